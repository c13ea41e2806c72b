"""Runs a plan: plans the forks, executes their steps in dependency order, repairs, scores, merges.

Everything the runner decides is first written to the plan's journal; everything it knows on
``resume`` comes from the journal (folded once, then kept in memory: each appended event is
applied to the projection, never a re-read per event). One engine runs a plan at a time (the
plan's lock). Each fork is a branch; each step attempt is sealed in a working copy of its own by
the hand-off coordinator, which judges it and merges its verified commit into the fork. A step
whose verdict was journaled is never issued again; a step handed off without a verdict when the
engine stopped is reattached (handoff mode) or issued again as a new attempt. Model replies are
journaled, so a resumed plan reuses them. A full disk or an unreachable model halts the plan
resumably; only a step's own failure (after its repairs) fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conductor import secrets
from conductor.confidence.scoring import score_step
from conductor.contract.globs import matches_protected
from conductor.contract.plan import Plan, PlanStep
from conductor.contract.provenance import decode_predicate
from conductor.contract.task import Confidence, ConfidenceFactor
from conductor.engine.config import load_config
from conductor.engine.errors import EngineError, ProjectError
from conductor.engine.faults import halt_reason, infrastructure_failure
from conductor.engine.llm_executor import serve_fork
from conductor.engine.llm_session import JournaledLLM
from conductor.engine.lock import PlanLock
from conductor.engine.planning import (
    PlanningError,
    Strategy,
    choose_strategies,
    plan_by_handoff,
    plan_with_llm,
    workspace_files,
)
from conductor.engine.scoring import ForkScore, pick_winner, score_fork
from conductor.engine.views import step_payload
from conductor.git import copies
from conductor.git import user as user_git
from conductor.git.branches import create_ref, fork_branch, read_ref, ref_of
from conductor.git.command import GitError
from conductor.handoff.coordinator import HandoffCoordinator, StepOutcome
from conductor.handoff.tasks import TaskSpec
from conductor.history.store import HistoryStore, SuccessRate
from conductor.journal.events import Event
from conductor.journal.projection import PlanState, StepState, apply, replay_for_writer
from conductor.llm import LLMClient, LLMError
from conductor.llm.prompts import repair_prompt
from conductor.policy import merge
from conductor.policy.levels import PolicyLevel, level_from_text, load_policy_file
from conductor.policy.merge import EffectivePolicy
from conductor.project.layout import ProjectLayout
from conductor.provenance.heads import plan_journal
from conductor.provenance.trust import TrustError, project_key_fingerprint
from conductor.storage import atomic_write_json
from conductor.storage.regular import read_json_regular

log = logging.getLogger("conductor.engine")

Progress = Callable[[str, float | None], None]
StepListener = Callable[[dict[str, Any]], None]
APPROVAL_POLL_SECONDS = 0.2


@dataclass
class Verdict:
    """What the runner needs of a step's verdict, from a live outcome or from the journal."""

    ok: bool
    reason: str
    cause: str | None
    evidence: dict[str, Any]

    @classmethod
    def of(cls, outcome: StepOutcome) -> Verdict:
        return cls(ok=outcome.ok, reason=outcome.reason, cause=outcome.reason_code,
                   evidence=outcome.evidence.model_dump(mode="json"))

    @property
    def changed(self) -> list[str]:
        e = self.evidence
        return sorted({*(e.get("created") or []), *(e.get("modified") or []), *(e.get("deleted") or [])})

    def summary(self) -> str:
        lines = [self.reason]
        lines += [f"- {v.get('code')}: {v.get('message')}" for v in self.evidence.get("violations") or []]
        for run in self.evidence.get("verification") or []:
            if run.get("exit_code") != 0:
                lines.append(f"- verification `{run.get('name')}` exited {run.get('exit_code')}: "
                             f"{(run.get('output_tail') or '').strip()[-800:]}")
        return "\n".join(lines)


class PlanningCancelled(EngineError):
    """The user halted the plan while a fork was still being planned."""


@dataclass
class RunOptions:
    goal: str = ""
    forks: int = 1
    mode: str | None = None  # handoff | llm; None = config
    merge: bool = True
    claim_timeout: float | None = None  # None: wait for an agent as long as the task's timeout after claim
    on_progress: Progress | None = None
    on_step: StepListener | None = None
    on_approval: Callable[[str, str, dict[str, Any]], Any] | None = None  # (fork, step, confidence)
    force_polling: bool = False


@dataclass
class RunSummary:
    plan_id: str
    outcome: str
    winner: str | None = None
    merged: bool = False
    merge_message: str = ""
    scores: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"plan_id": self.plan_id, "outcome": self.outcome, "winner": self.winner, "merged": self.merged,
                "merge_message": self.merge_message, "scores": self.scores, "notes": self.notes}


class EarlierPlans:
    """The history as confidence sees it: earlier plans only.

    Scoring a step on outcomes of its own plan would make a fork's confidence depend on how
    fast the other forks ran, and a resumed plan score differently from an uninterrupted one.
    """

    def __init__(self, store: HistoryStore, plan_id: str) -> None:
        self.store = store
        self.plan_id = plan_id

    def success_rate(self, instruction: str, allowed_files: Sequence[str] = ()) -> SuccessRate:
        return self.store.success_rate(instruction, allowed_files, exclude_plan=self.plan_id)


class PlanRunner:
    """One plan's run (or resumed run) in one process; it holds the plan's lock while it runs."""

    def __init__(self, layout: ProjectLayout, plan_id: str, options: RunOptions, cancel: asyncio.Event | None = None,
                 llm: Any = None) -> None:
        self.layout = layout
        self.plan_id = plan_id
        self.options = options
        self.cancel = cancel or asyncio.Event()
        self.journal = plan_journal(layout, plan_id)
        self.config = load_config(layout)
        secrets.register_name(self.config.llm.api_key_env)
        self.mode = options.mode or self.config.mode
        live = llm
        if live is None:
            client = LLMClient(self.config.llm, recorder=None)
            live = client if client.is_configured() else None
        self.llm = JournaledLLM(live, self.journal)
        if isinstance(live, LLMClient):
            live.recorder = self.llm.record
        self.project_level: PolicyLevel | None = None
        self.coordinator: HandoffCoordinator | None = None
        self.history = HistoryStore(layout.history_db)
        self.plans: dict[str, Plan] = {}
        self.base_commit = ""
        self.lock = PlanLock(layout, plan_id)
        self._state: PlanState | None = None
        self._read_to = 0  # byte offset of the journal read into ``_state`` (see ``state``)
        self._fold_lock = threading.RLock()
        self._background: set[asyncio.Future[Any]] = set()
        self._reattach: set[tuple[str, str]] = set()  # (fork, step) handed off before a restart, still live
        self._fault: BaseException | None = None  # the infrastructure failure the plan is halting for

    # ------------------------------------------------------------------ the journal and its projection
    # The runner is the plan's only engine, but not the journal's only writer: a person's
    # `conductor approve` appends from another process. The in-memory state therefore holds
    # every event up to ``last_seq`` with no gap, and ``_read_to`` is the byte offset up to which
    # the journal has been read: an own event whose seq is not the next one means others wrote
    # in between, and they are read from there (in order) before it. One lock keeps a thread
    # (the approval poll, recovery) and the event loop from folding at the same time.
    def state(self) -> PlanState:
        """The plan's state: the journal folded once, then each appended event applied in memory."""
        with self._fold_lock:
            if self._state is None:
                self._state, self._read_to = replay_for_writer(self.journal)
            return self._state

    def append(self, event_type: str, /, **data: Any) -> None:
        """Journal an event (the journal redacts secrets) and apply it to the in-memory state."""
        with self._fold_lock:
            state = self.state()
            self._absorb(state, [self.journal.append(event_type, **data)])
            self.journal.maybe_checkpoint(state)

    def append_many(self, *events: tuple[str, dict[str, Any]]) -> None:
        """Journal events that belong together in one fsync (all or none), applied in order."""
        with self._fold_lock:
            state = self.state()
            self._absorb(state, self.journal.append_events(events))
            self.journal.maybe_checkpoint(state)

    def refresh(self) -> PlanState:
        """Apply events other processes appended (a person's approval) since the last look."""
        with self._fold_lock:
            state = self.state()
            self._read_on(state)
            return state

    def _absorb(self, state: PlanState, events: Sequence[Event]) -> None:
        if events and events[0].seq != state.last_seq + 1:
            self._read_on(state)  # another process appended first: read its events and ours, in order
            return
        for event in events:
            apply(state, event)

    def _read_on(self, state: PlanState) -> None:
        for record, end in self.journal.scan(self._read_to):
            if record["seq"] > state.last_seq:
                apply(state, record)
            self._read_to = end

    # ------------------------------------------------------------------ helpers
    def progress(self, message: str, fraction: float | None = None) -> None:
        log.info("%s", message)
        if self.options.on_progress:
            self.options.on_progress(message, fraction)

    def step_changed(self, fork_id: str, step_id: str) -> None:
        if not self.options.on_step:
            return
        step = self.state().find_step(step_id, fork_id)
        if step is not None:
            self.options.on_step(step_payload(self.layout, self.plan_id, step))

    def uses_llm_planner(self) -> bool:
        if self.config.planner == "handoff":
            return False
        if self.config.planner == "llm":
            if not self.llm.is_configured():
                raise EngineError(f"planner is `llm` but no API key is set (variable {self.config.llm.api_key_env})")
            return True
        return self.llm.is_configured() or bool(list(self.journal.events(types="llm.call")))

    def policy_for(self, fork_id: str, step: PlanStep | None, *,
                   approved: bool = False) -> tuple[EffectivePolicy, list[PolicyLevel]]:
        """The step's effective policy. Plan and step levels come from a planning agent or a model: they
        may tighten the person's policy, and loosen it only once a person approved (``approved``)."""
        levels: list[PolicyLevel] = [self.project_level] if self.project_level else []
        plan = self.plans.get(fork_id)
        display = self.layout.relative_path(self.layout.plan_file(self.plan_id, fork_id))
        if plan is not None and plan.policy is not None:
            levels.append(PolicyLevel(level="plan", policy=plan.policy, file=display, by_agent=True))
        if step is not None and step.policy is not None:
            levels.append(PolicyLevel(level="step", policy=step.policy, file=display, by_agent=True))
        return merge(levels, trust_agents=approved), levels

    def fork_ref(self, fork_id: str) -> str:
        return ref_of(fork_branch(self.plan_id, fork_id))

    def stop_for(self, error: BaseException) -> None:
        """An infrastructure failure (full disk, model endpoint down) in one step or executor: every
        fork stops as on Ctrl-C, and the plan is journaled ``halted`` with its reason, resumably."""
        if self._fault is None:
            log.warning("halting: %s", halt_reason(error))
            self._fault = error
        self.cancel.set()

    # ------------------------------------------------------------------ entry points
    async def run(self) -> RunSummary:
        """Start the plan (journal ``plan.created``) and run it to its end or a halt."""
        self.lock.acquire()
        try:
            if self.state().status != "new":
                raise EngineError(f"plan {self.plan_id} already exists ({self.state().status}); "
                                  f"`conductor resume --plan {self.plan_id}` continues it")
            try:  # first: without a usable key nothing could be signed, so nothing is started
                fingerprint = await asyncio.to_thread(project_key_fingerprint, self.layout)
            except TrustError as exc:
                raise ProjectError(str(exc), code="key/untrusted") from exc
            notes = await asyncio.to_thread(self._prepare_repository)
            for note in notes:
                self.progress(note)
            forks = max(1, self.options.forks)
            pinned = self._pin_policy()
            self.append("plan.created", goal=self.options.goal, mode=self.mode, forks=forks,
                        config=self.config.model_dump(mode="json") | {"base_commit": await asyncio.to_thread(
                            user_git.head, self.layout.root), "merge": self.options.merge},
                        key_fingerprint=fingerprint, policy_pin=pinned)
            return await self._drive(notes)
        finally:
            self.lock.release()

    async def resume(self) -> RunSummary:
        self.lock.acquire()
        try:
            state = self.state()
            if state.status == "finished":
                return self._summary(state, ["the plan had already finished; nothing to do"])
            if state.status == "new":
                raise EngineError(f"plan {self.plan_id} never started (its journal has no plan.created event); "
                                  "start the goal again")
            notes = await asyncio.to_thread(user_git.recover_after_crash, self.layout.root)
            self.append("plan.resumed")
            self.options.goal = state.goal
            self.options.forks = state.forks_requested or 1
            self.mode = state.mode or self.mode
            self.options.merge = bool(state.config.get("merge", True))
            return await self._drive([f"resumed plan {self.plan_id} from event {state.last_seq}", *notes])
        finally:
            self.lock.release()

    def _prepare_repository(self) -> list[str]:
        """The project as a repository with a commit; Conductor's first commit never holds secrets."""
        level = self._load_project_policy()
        protected = merge([level] if level else []).protected

        def never_commit(path: str) -> bool:
            return (matches_protected(path, [*protected, *user_git.SECRET_NAMES]) is not None
                    or path.startswith(".conductor/keys/"))

        return user_git.ensure_repository(self.layout.root, never_commit)

    def _load_project_policy(self) -> PolicyLevel | None:
        return load_policy_file(self.layout.policy_file, self.layout.policy_display)

    def _pin_policy(self) -> dict[str, Any]:
        """The project policy this plan runs under, pinned in the journal (content and hash)."""
        path = self.layout.policy_file
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        self.project_level = self._load_project_policy()
        return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "text": text}

    def _restore_pinned_policy(self, state: PlanState) -> list[str]:
        """On resume: run under the policy pinned when the plan started, and say when the file changed since."""
        pin = (state.config or {}).get("policy_pin") or self._pin_from_journal()
        if not pin:
            self.project_level = self._load_project_policy()
            return []
        text = pin.get("text", "")
        self.project_level = level_from_text(text, self.layout.policy_display) if text else None
        current = self.layout.policy_file.read_text(encoding="utf-8") if self.layout.policy_file.exists() else ""
        if hashlib.sha256(current.encode("utf-8")).hexdigest() != pin.get("sha256"):
            return [".conductor/policy.yaml changed since this plan started; the plan keeps running under the policy "
                    "pinned when it started (a new plan will use the new one)"]
        return []

    def _pin_from_journal(self) -> dict[str, Any] | None:
        for event in self.journal.events(types="plan.created"):
            return event.data.get("policy_pin")
        return None

    # ------------------------------------------------------------------ the run
    async def _drive(self, notes: list[str]) -> RunSummary:
        state = self.state()
        notes.extend(self._restore_pinned_policy(state))
        self.base_commit = str(state.config.get("base_commit") or await asyncio.to_thread(
            user_git.head, self.layout.root))
        self.coordinator = HandoffCoordinator(self.layout, force_polling=self.options.force_polling)
        await self.coordinator.start()
        try:
            strategies = await self._strategies(state)
            results = await asyncio.gather(
                *(self._run_fork(fork_id, strategy) for fork_id, strategy in strategies.items()),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if self._fault is not None:
                return self._halt(self._fault, notes)
            if self.cancel.is_set():
                self.append("plan.halted", reason="cancelled by the user; `conductor resume` continues")
                return self._summary(self.state(), notes)
            halting = [e for e in errors if infrastructure_failure(e)]
            if halting:
                return self._halt(halting[0], notes)
            for error in errors:
                if isinstance(error, (PlanningError, LLMError, EngineError, GitError)):
                    log.warning("%s", error)
                    notes.append(str(error))
                else:
                    raise error
            return await self._finish(notes)
        except (asyncio.CancelledError, KeyboardInterrupt):
            with contextlib.suppress(Exception):
                self.append("plan.halted", reason="interrupted; `conductor resume` continues")
            raise
        except Exception as error:
            if infrastructure_failure(error):
                return self._halt(error, notes)
            raise
        finally:
            await self.coordinator.close()
            self.history.close()

    def _halt(self, error: BaseException, notes: list[str]) -> RunSummary:
        """An infrastructure failure (full disk, model endpoint down): halt resumably, fail nothing."""
        reason = halt_reason(error)
        if "conductor resume" not in reason:
            reason += "; fix it, then `conductor resume` continues"
        with contextlib.suppress(Exception):  # on a full disk even this may not be written
            self.append("plan.halted", reason=reason)
        summary = self._summary(self.state(), [*notes, reason])
        summary.outcome = "halted"
        return summary

    async def _strategies(self, state: PlanState) -> dict[str, Strategy]:
        known = {fid: Strategy(f.strategy, f.summary) for fid, f in state.forks.items() if f.strategy}
        wanted = max(1, state.forks_requested or self.options.forks)
        if len(known) >= wanted:
            return dict(sorted(known.items()))
        files = await asyncio.to_thread(workspace_files, self.layout.root)
        llm = self.llm if self.uses_llm_planner() else None
        chosen = await choose_strategies(llm, state.goal or self.options.goal, wanted, files)
        fork_ids = ["main"] if wanted == 1 else [f"f{i + 1}" for i in range(wanted)]
        return {fid: known.get(fid, strategy) for fid, strategy in zip(fork_ids, chosen, strict=False)}

    async def _run_fork(self, fork_id: str, strategy: Strategy) -> None:
        state = self.state()
        fork = state.forks.get(fork_id)
        branch = fork_branch(self.plan_id, fork_id)
        start = await self._fork_start(fork_id)
        await asyncio.to_thread(create_ref, self.layout.root, branch, start)
        assert self.coordinator is not None
        self.coordinator.expect_ref(ref_of(branch), start)
        if fork is None or fork.branch is None:
            self.append("fork.created", fork_id=fork_id, branch=branch, worktree=None)
        plan = await self._plan(fork_id, strategy, state)
        self.plans[fork_id] = plan
        await asyncio.to_thread(self._abandon_interrupted, fork_id)
        stop = asyncio.Event()
        agent = None
        if self.mode == "llm":
            if not self.llm.is_configured() and not self.llm.live:
                raise EngineError("mode is `llm` but no API key is set; use mode `handoff` or set the key")
            agent = asyncio.create_task(serve_fork(self.layout, self.plan_id, fork_id, self.llm, stop))
            agent.add_done_callback(self._executor_stopped)
        try:
            await self._run_steps(fork_id, plan)
        finally:
            stop.set()
            if agent is not None:
                await agent

    def _executor_stopped(self, agent: asyncio.Task[int]) -> None:
        error = None if agent.cancelled() else agent.exception()
        if error is not None and infrastructure_failure(error):
            self.stop_for(error)

    async def _fork_start(self, fork_id: str) -> str:
        """Where the fork's branch starts: the fork's head when it exists (resume), else the plan's base."""
        head = await asyncio.to_thread(read_ref, self.layout.root, fork_branch(self.plan_id, fork_id))
        return head or self.base_commit

    async def _plan(self, fork_id: str, strategy: Strategy, state: PlanState) -> Plan:
        recorded = [e for e in self.journal.events(types="plan.planned", fork_id=fork_id)]
        if recorded:
            return Plan.model_validate(recorded[-1].data["plan"])
        policy, _ = self.policy_for(fork_id, None)
        self.progress(f"planning fork {fork_id} ({strategy.name})")
        inputs: dict[str, Any] = {}
        if self.uses_llm_planner():
            files = await asyncio.to_thread(workspace_files, self.layout.root)
            inputs = {"planner": "llm", "files": files, "summary": strategy.summary, "constraints": policy.constraints}
            plan = await plan_with_llm(self.llm, state.goal or self.options.goal, strategy, files, policy)
        else:
            assert self.coordinator is not None
            await asyncio.to_thread(self._set_aside, fork_id, "step_000")
            planning = asyncio.create_task(plan_by_handoff(self.coordinator, self.plan_id, fork_id,
                                                           state.goal or self.options.goal, strategy,
                                                           self.base_commit, policy))
            cancelled = asyncio.create_task(self.cancel.wait())
            await asyncio.wait({planning, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            cancelled.cancel()
            if not planning.done():
                planning.cancel()
                raise PlanningCancelled(f"planning of fork {fork_id} was cancelled")
            plan = planning.result()
        document = plan.model_dump(mode="json", exclude_none=True)
        await asyncio.to_thread(atomic_write_json, self.layout.plan_file(self.plan_id, fork_id), document)
        self.append("plan.planned", fork_id=fork_id, strategy=strategy.name, plan=document, inputs=inputs)
        for step in plan.steps:
            self.step_changed(fork_id, step.id)
        return plan

    async def _run_steps(self, fork_id: str, plan: Plan) -> None:
        limit = self.config.max_parallel_steps
        running: dict[str, asyncio.Task[str]] = {}
        finished: dict[str, str] = {}
        state = self.state()
        for sid, s in state.forks[fork_id].steps.items():
            if s.state in ("completed", "skipped"):
                finished[sid] = s.state
        by_id = {s.id: s for s in plan.steps}
        while True:
            if self.cancel.is_set():
                break
            for sid, step in by_id.items():
                if sid in finished or sid in running or len(running) >= limit:
                    continue
                deps = [finished.get(d) for d in step.depends_on]
                if any(d in ("failed", "skipped") for d in deps):
                    finished[sid] = "skipped"
                    continue
                if all(d == "completed" for d in deps):
                    running[sid] = asyncio.create_task(self._run_step(fork_id, sid))
            if not running:
                break
            done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
            for sid, task in list(running.items()):
                if task in done:
                    del running[sid]
                    finished[sid] = task.result()
        for task in running.values():
            task.cancel()

    # ------------------------------------------------------------------ one step
    async def _run_step(self, fork_id: str, step_id: str) -> str:
        try:
            return await self._step(fork_id, step_id)
        except Exception as error:
            if not infrastructure_failure(error):
                raise
            self.stop_for(error)
            return "halted"

    async def _step(self, fork_id: str, step_id: str) -> str:
        plan = self.plans[fork_id]
        planned = next(s for s in plan.steps if s.id == step_id)
        state = self.state().forks[fork_id].steps[step_id]
        step = planned.model_copy(update={"instruction": state.instruction or planned.instruction,
                                          "allowed_files": state.allowed_files or planned.allowed_files})
        policy, _levels = self.policy_for(fork_id, planned)
        confidence = await self._confidence(fork_id, step, policy, state)
        if confidence.level == "low" and not state.approved_by:
            decision = await self._await_approval(fork_id, step_id, confidence)
            if decision != "approved":
                return "skipped"
        if policy.requested and self.state().forks[fork_id].steps[step_id].approved_by:
            policy, _levels = self.policy_for(fork_id, planned, approved=True)  # a person approved the loosening
        max_repairs = int(policy.limit("max_repairs"))
        if confidence.score < float(policy.limit("fork_below")) and not self.state().forks[fork_id].steps[
                step_id].repairs:
            result = await self._run_variants(fork_id, step, policy, confidence)
            if result != "failed":
                return result
        while True:
            if self.cancel.is_set():
                return "halted"
            state = self.state().forks[fork_id].steps[step_id]
            verdict: Verdict | None = None
            if state.state == "in_progress":
                verdict = self._journaled_verdict(fork_id, step_id)  # else set aside at fork start
            if verdict is None:
                outcome = await self._execute(fork_id, step, policy, confidence, state.attempts + 1)
                if outcome is None:
                    return "halted"
                verdict = Verdict.of(outcome)
            if verdict.ok:
                await self._accept(fork_id, step, verdict, state)
                return "completed"
            await self._reject(fork_id, step, verdict)
            if len(self.state().forks[fork_id].steps[step_id].repairs) >= max_repairs:
                return "failed"
            step = await self._repair(fork_id, step, verdict, len(state.repairs) + 1)

    # ------------------------------------------------------------------ mid-plan fork of one step
    async def _run_variants(self, fork_id: str, step: PlanStep, policy: EffectivePolicy,
                            confidence: Confidence) -> str:
        """Run a low-confidence step as two variants, each an attempt of its own; keep the best.

        Variant 1 is the step as planned. Variant 2 is the model's alternative approach, or,
        without a model, the same step for a second, independent executor. Both start from the
        fork's head; the chosen variant's commit is merged into the fork; if none passes, the
        step continues as a normal failed step (repair).
        """
        variants = [(step.instruction, list(step.allowed_files))]
        if self.llm.is_configured() or self.llm.live is not None:
            prompt = repair_prompt(step, "low confidence: propose a different, safer way to do this step",
                                   "The step has not run yet; its confidence was "
                                   f"{confidence.score:.2f}.", [], self.options.goal)
            reply = await asyncio.to_thread(self.llm.complete_json, prompt.messages, prompt.schema, prompt.purpose)
            variants.append((reply.data["instruction"], list(reply.data["allowed_files"])))
        else:
            variants.append((step.instruction, list(step.allowed_files)))
        subs = [f"{fork_id}-{step.id}-v{i + 1}" for i in range(len(variants))]
        if not list(self.journal.events(types="step.forked", fork_id=fork_id, step_id=step.id)):
            self.append("step.forked", fork_id=fork_id, step_id=step.id, variants=[
                {"variant": sub, "instruction": text, "allowed_files": files}
                for sub, (text, files) in zip(subs, variants, strict=True)])
        self.progress(f"{fork_id}/{step.id} confidence {confidence.score:.2f}: trying {len(subs)} variants")
        base = await asyncio.to_thread(read_ref, self.layout.root, self.fork_ref(fork_id))
        assert base is not None
        outcomes = await asyncio.gather(*(
            self._run_variant(fork_id, sub, step, text, files, policy, confidence, base)
            for sub, (text, files) in zip(subs, variants, strict=True)))
        if any(o is None for o in outcomes):
            return "halted"
        ranked = sorted(((o.ok, -o.evidence.diff_lines, -i), i) for i, o in enumerate(outcomes) if o is not None)
        best = ranked[-1][1]
        chosen = outcomes[best]
        assert chosen is not None and self.coordinator is not None
        if not chosen.ok or chosen.commit is None:
            self.append("step.variant_chosen", fork_id=fork_id, step_id=step.id, variant=None,
                        reason="no variant passed verification")
            return "failed"
        sub = subs[best]
        merged, _head, why = await self.coordinator.integrate(self.fork_ref(fork_id), chosen.commit,
                                                              f"Merge {step.id} (variant {best + 1})")
        if not merged:
            self.append("step.variant_chosen", fork_id=fork_id, step_id=step.id, variant=None, reason=why)
            return "failed"
        self.append("step.variant_chosen", fork_id=fork_id, step_id=step.id, variant=sub,
                    reason=f"passed with {chosen.evidence.diff_lines} changed lines"
                    + ("" if all(o and o.ok for o in outcomes) else "; the other variant failed"))
        self.append("step.verified", fork_id=fork_id, step_id=step.id, verdict=chosen.verdict,
                    reason=chosen.reason, evidence=chosen.evidence.model_dump(mode="json"),
                    provenance_path=self.layout.relative(chosen.provenance_path))
        self.append("step.completed", fork_id=fork_id, step_id=step.id)
        self.step_changed(fork_id, step.id)
        return "completed"

    async def _run_variant(self, fork_id: str, sub: str, step: PlanStep, instruction: str, allowed: list[str],
                           policy: EffectivePolicy, confidence: Confidence, base: str) -> StepOutcome | None:
        assert self.coordinator is not None
        number = sub.rsplit("-v", 1)[1]
        await asyncio.to_thread(self._set_aside, sub, step.id)
        spec = TaskSpec(plan_id=self.plan_id, fork_id=sub, task_id=step.id, title=f"{step.title} (variant {number})",
                        instruction=instruction, allowed_files=allowed, depends_on=list(step.depends_on),
                        confidence=confidence, policy=policy)
        stop = asyncio.Event()
        agent = (asyncio.create_task(serve_fork(self.layout, self.plan_id, sub, self.llm, stop))
                 if self.mode == "llm" else None)
        try:
            hand_off = asyncio.create_task(self.coordinator.hand_off(spec, base=base,
                                                                     claim_timeout=self.options.claim_timeout))
            cancel = asyncio.create_task(self.cancel.wait())
            done, _ = await asyncio.wait({hand_off, cancel}, return_when=asyncio.FIRST_COMPLETED)
            cancel.cancel()
            if hand_off not in done:
                hand_off.cancel()
                return None
            return hand_off.result()
        finally:
            stop.set()
            if agent is not None:
                await agent

    def _journaled_verdict(self, fork_id: str, step_id: str) -> Verdict | None:
        """A verdict journaled after the step's last hand-off (the engine stopped before acting on it)."""
        last_handoff = -1
        verified: dict[str, Any] | None = None
        for event in self.journal.events(types=["step.handed_off", "step.verified"], fork_id=fork_id,
                                         step_id=step_id):
            if event.type == "step.handed_off":
                last_handoff, verified = event.seq, None
            elif event.seq > last_handoff:
                verified = event.data
        if verified is None:
            return None
        evidence = verified.get("evidence") or {}
        violations = evidence.get("violations") or []
        return Verdict(ok=verified["verdict"] == "pass", reason=verified.get("reason", ""),
                       cause=violations[0]["code"] if violations else None, evidence=evidence)

    async def _confidence(self, fork_id: str, step: PlanStep, policy: EffectivePolicy,
                          state: StepState) -> Confidence:
        if state.confidence:
            return Confidence.model_validate(state.confidence)
        confidence = score_step(
            step,
            history=EarlierPlans(self.history, self.plan_id),
            is_protected=lambda p: matches_protected(p, policy.protected) is not None,
            approval_below=policy.limit("approval_below"),
            caution_below=policy.limit("caution_below"),
        )
        if policy.requested:
            confidence = hold_for_loosening(confidence, policy)
        eff = policy.to_json(show_origin=True)
        self.append_many(
            ("step.confidence", {"fork_id": fork_id, "step_id": step.id,
                                 "confidence": confidence.model_dump(mode="json")}),
            ("policy.effective", {"fork_id": fork_id, "step_id": step.id,
                                  "policy": policy.to_json(show_origin=False), "origins": eff}))
        return confidence

    async def _await_approval(self, fork_id: str, step_id: str, confidence: Confidence) -> str:
        self.append("step.waiting_approval", fork_id=fork_id, step_id=step_id)
        self.step_changed(fork_id, step_id)
        self.progress(f"{fork_id}/{step_id} has LOW confidence ({confidence.score:.2f}): waiting for "
                      f"`conductor approve {step_id} --plan {self.plan_id}`")
        if self.options.on_approval:
            result = self.options.on_approval(fork_id, step_id, confidence.model_dump(mode="json"))
            if asyncio.iscoroutine(result):
                self._background.add(asyncio.ensure_future(result))
        while not self.cancel.is_set():
            step = (await asyncio.to_thread(self.refresh)).forks[fork_id].steps[step_id]
            if step.rejected_by:
                self.step_changed(fork_id, step_id)
                return "rejected"
            if step.approved_by:
                self.step_changed(fork_id, step_id)
                return "approved"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel.wait(), APPROVAL_POLL_SECONDS)
        return "halted"

    def _set_aside(self, fork_id: str, step_id: str) -> None:
        """Move a step's leftover pending/in_progress files to failed/ so the attempt can be issued again."""
        fork_dir = self.layout.fork_dir(self.plan_id, fork_id)
        target = fork_dir / "failed" / "interrupted"
        for folder in ("pending", "in_progress"):
            for suffix in (".task.json", ".result.json", ".explanation.md"):
                path = fork_dir / folder / f"{step_id}{suffix}"
                if os.path.lexists(path):
                    target.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target / f"{path.name}.{uuid.uuid4().hex[:6]}")

    def _abandon_interrupted(self, fork_id: str) -> None:
        """Before a (resumed) fork runs: deal with every attempt that has no journaled verdict.

        In handoff mode an attempt whose task is still pending or claimed is *reattached*: the
        agent may still be working (or done) in its working copy, and its result is judged
        against the saved base. Any other attempt (llm mode, where the executor died with the
        engine, or no saved state) is set aside and issued again as a new attempt; its working
        copy stays for inspection until the plan ends. The fork's branch only ever holds
        verified, integrated steps, so nothing needs to be undone there.
        """
        fork = self.state().forks.get(fork_id)
        if fork is None:
            return
        interrupted = [s.step_id for s in fork.steps.values()
                       if s.state == "in_progress" and self._journaled_verdict(fork_id, s.step_id) is None]
        for step_id in list(interrupted):
            if self._recover_verdict(fork_id, step_id, fork.steps[step_id].attempts):
                interrupted.remove(step_id)
        if self.mode == "handoff" and self.coordinator is not None:
            saved = {(f, t) for p, f, t in self.coordinator.interrupted() if p == self.plan_id}
            folder = self.layout.fork_dir(self.plan_id, fork_id)
            for step_id in list(interrupted):
                live = any((folder / state / f"{step_id}.task.json").exists() for state in ("pending", "in_progress"))
                if (fork_id, step_id) in saved and live:
                    self._reattach.add((fork_id, step_id))
                    interrupted.remove(step_id)
        for step_id in interrupted:
            self._set_aside(fork_id, step_id)

    def _recover_verdict(self, fork_id: str, step_id: str, attempt: int) -> bool:
        """Journal a verdict the coordinator recorded (signed provenance, verdict file) before the engine stopped.

        The verdict file is written last, after the provenance and the audit line: when it is there, the
        attempt was judged (and, on a pass, merged into the fork) and must not be done again.
        """
        path = self.layout.verdict_file(self.plan_id, fork_id, step_id, attempt) if attempt else None
        data = read_json_regular(path) if path is not None else None
        if not data or data.get("attempt") != attempt or data.get("task_id") != step_id:
            return False
        fork_dir = self.layout.fork_dir(self.plan_id, fork_id)
        provenance = fork_dir / str(data.get("provenance") or "")
        predicate = decode_predicate(read_json_regular(provenance)) if data.get("provenance") else None
        if not predicate:
            return False
        self.append("step.verified", fork_id=fork_id, step_id=step_id, verdict=data["verdict"],
                    reason=data.get("reason", ""), evidence=predicate.get("evidence") or {},
                    provenance_path=self.layout.relative(provenance), attempt=attempt,
                    commit=(predicate.get("evidence") or {}).get("commit"), recovered=True)
        self.progress(f"{fork_id}/{step_id}: its verdict ({data['verdict']}) was recorded before the engine stopped; "
                      "taken from its signed provenance")
        return True

    async def _execute(self, fork_id: str, step: PlanStep, policy: EffectivePolicy, confidence: Confidence,
                       attempt: int) -> StepOutcome | None:
        assert self.coordinator is not None
        spec = TaskSpec(plan_id=self.plan_id, fork_id=fork_id, task_id=step.id, title=step.title,
                        instruction=step.instruction, allowed_files=list(step.allowed_files),
                        depends_on=list(step.depends_on), confidence=confidence, policy=policy, attempt=attempt)
        if (fork_id, step.id) in self._reattach:
            self._reattach.discard((fork_id, step.id))
            self.progress(f"{fork_id}/{step.id} was handed off before the restart: waiting for its result")
            waiting = self.coordinator.reattach(self.plan_id, fork_id, step.id, policy=policy,
                                                claim_timeout=self.options.claim_timeout)
        else:
            base = await asyncio.to_thread(read_ref, self.layout.root, self.fork_ref(fork_id))
            task_path = self.layout.state_dir(self.plan_id, fork_id, "pending") / f"{step.id}.task.json"
            self.append("step.handed_off", fork_id=fork_id, step_id=step.id,
                        task_path=self.layout.relative(task_path), checksum=None, attempt=attempt, base=base,
                        workspace=self.layout.relative_path(
                            self.layout.attempt_dir(self.plan_id, fork_id, step.id, attempt)))
            self.step_changed(fork_id, step.id)
            self.progress(f"{fork_id}/{step.id} handed off (attempt {attempt}): {step.title}")
            waiting = self.coordinator.hand_off(spec, base=base, integrate_into=self.fork_ref(fork_id),
                                                claim_timeout=self.options.claim_timeout)
        hand_off = asyncio.create_task(waiting)
        cancel = asyncio.create_task(self.cancel.wait())
        done, _ = await asyncio.wait({hand_off, cancel}, return_when=asyncio.FIRST_COMPLETED)
        if hand_off not in done:
            hand_off.cancel()
            return None
        cancel.cancel()
        outcome = hand_off.result()
        if outcome.claimed_at:
            self.append("step.claimed", fork_id=fork_id, step_id=step.id, executor=outcome.executor)
        run = outcome.result.agent_run.model_dump(mode="json") if outcome.result and outcome.result.agent_run else None
        self.append("step.verified", fork_id=fork_id, step_id=step.id, verdict=outcome.verdict,
                    reason=outcome.reason, evidence=outcome.evidence.model_dump(mode="json"),
                    provenance_path=self.layout.relative(outcome.provenance_path), attempt=outcome.attempt,
                    commit=outcome.commit, fork_head=outcome.fork_head, agent_run=run,
                    workspace=self.layout.relative_path(outcome.workspace))
        return outcome

    async def _accept(self, fork_id: str, step: PlanStep, verdict: Verdict, state: StepState) -> None:
        self.append("step.completed", fork_id=fork_id, step_id=step.id)
        self.step_changed(fork_id, step.id)
        self.history.record_outcome(goal=self.options.goal, title=step.title, instruction=step.instruction,
                                    allowed_files=list(step.allowed_files), outcome="completed",
                                    plan_id=self.plan_id, fork_id=fork_id, step_id=step.id)
        if state.repairs:
            last = state.repairs[-1]
            self.history.record_repair(failure_cause=str(last.get("failure_cause") or "unknown"),
                                       original_instruction=str(last.get("previous_instruction") or ""),
                                       original_allowed_files=list(last.get("previous_allowed_files") or []),
                                       evidence_summary=str(last.get("failure_cause") or ""),
                                       fix_instruction=step.instruction, fix_allowed_files=list(step.allowed_files),
                                       succeeded=True, plan_id=self.plan_id, fork_id=fork_id, step_id=step.id)

    async def _reject(self, fork_id: str, step: PlanStep, verdict: Verdict) -> None:
        cause = verdict.cause or "failed"
        self.append("step.failed", fork_id=fork_id, step_id=step.id, cause=cause, reason=verdict.reason)
        self.step_changed(fork_id, step.id)
        self.progress(f"{fork_id}/{step.id} failed: {verdict.reason}")
        self.history.record_outcome(goal=self.options.goal, title=step.title, instruction=step.instruction,
                                    allowed_files=list(step.allowed_files), outcome="failed", failure_cause=cause,
                                    plan_id=self.plan_id, fork_id=fork_id, step_id=step.id)

    async def _repair(self, fork_id: str, step: PlanStep, verdict: Verdict, attempt: int) -> PlanStep:
        cause = verdict.cause or "failed"
        fixes = [f.to_dict() for f in self.history.similar_failures_with_fixes(
            step.instruction, list(step.allowed_files), failure_cause=cause)]
        evidence = verdict.summary()
        instruction, allowed = step.instruction, list(step.allowed_files)
        if self.llm.is_configured() or self.llm.live is not None:
            prompt = repair_prompt(step, cause, evidence, fixes, self.options.goal)
            reply = await asyncio.to_thread(self.llm.complete_json, prompt.messages, prompt.schema, prompt.purpose)
            instruction, allowed = reply.data["instruction"], list(reply.data["allowed_files"])
        else:
            advice = "".join(f"\nA similar failure was fixed by: {f.get('fix_instruction')}" for f in fixes[:2])
            base = step.instruction.split("\n\nThe previous attempt failed")[0]
            instruction = f"{base}\n\nThe previous attempt failed verification: {evidence.strip()}{advice}"
        self.append("step.repair_planned", fork_id=fork_id, step_id=step.id, attempt=attempt + 1,
                    instruction=instruction, allowed_files=allowed, similar_fixes=fixes)
        self.progress(f"{fork_id}/{step.id} repaired; trying again (attempt {attempt + 1})")
        return step.model_copy(update={"instruction": instruction, "allowed_files": allowed})

    # ------------------------------------------------------------------ the end
    async def _finish(self, notes: list[str]) -> RunSummary:
        state = self.state()
        scores: list[ForkScore] = []
        for fork_id, fork in sorted(state.forks.items()):
            try:
                _, lines = await asyncio.to_thread(user_git.diff_stat, self.layout.root, self.base_commit,
                                                   fork_branch(self.plan_id, fork_id))
            except GitError:
                lines = 0
            score = score_fork(fork_id, list(fork.steps.values()), lines)
            if fork.score is None:
                self.append("fork.scored", fork_id=fork_id, score=score.score,
                            parts={**score.parts, "eligible": score.eligible})
            scores.append(score)
        winner = pick_winner(scores)
        summary = RunSummary(self.plan_id, "failed", scores=[s.to_json() for s in scores], notes=notes)
        if winner is None:
            self.append("plan.finished", outcome="failed")  # the refused attempts' copies stay for inspection
            summary.merge_message = "no fork completed every step; nothing was merged"
            if self.coordinator is not None:
                await self.coordinator.drop_spares()  # the refused copies stay; spares made for nothing go
            return summary
        summary.winner = winner.fork_id
        summary.outcome = "completed"
        branch = fork_branch(self.plan_id, winner.fork_id)
        already = None
        for fid in sorted(state.forks):
            if await asyncio.to_thread(user_git.is_merged, self.layout.root, fork_branch(self.plan_id, fid),
                                       self.base_commit):
                already = fid
                break
        if state.merged:
            summary.merged = True
            summary.merge_message = f"already merged {branch}"
        elif already is not None:
            # a merge done just before a crash, not yet journaled: record it, never merge a second fork
            summary.winner, summary.merged = already, True
            branch = fork_branch(self.plan_id, already)
            summary.merge_message = f"merged {branch} (before the engine was interrupted)"
            self.append("plan.merged", fork_id=already, branch=branch,
                        commit=await asyncio.to_thread(user_git.head, self.layout.root))
        elif self.options.merge:
            merged = await asyncio.to_thread(user_git.merge_branch, self.layout.root, branch,
                                             f"Conductor plan {self.plan_id}: {state.goal}")
            summary.merged, summary.merge_message = merged.merged, merged.message
            if merged.merged:
                self.append("plan.merged", fork_id=winner.fork_id, branch=branch, commit=merged.commit)
        else:
            summary.merge_message = f"not merged (--no-merge); run `git merge {branch}`"
        self.append("plan.finished", outcome="completed")
        await self._end_attempts()
        return summary

    async def _end_attempts(self) -> None:
        if self.coordinator is not None:
            await self.coordinator.drop_spares()  # no copy is still being made under the folder removed next
        await asyncio.to_thread(self._clean_attempts)

    def _clean_attempts(self) -> None:
        """The plan completed: remove the working copies of its refused attempts (kept for inspection until now)."""
        with contextlib.suppress(OSError):
            copies.remove(self.layout.attempts_dir / self.plan_id)

    def _summary(self, state: PlanState, notes: list[str]) -> RunSummary:
        return RunSummary(self.plan_id, state.outcome or state.status, winner=(state.merged or {}).get("fork_id"),
                          merged=bool(state.merged), notes=notes)


def hold_for_loosening(confidence: Confidence, policy: EffectivePolicy) -> Confidence:
    """LOW confidence for a step whose plan asks to loosen the person's policy: it waits for approval."""
    asked = "; ".join(f"{r.message} ({r.origin})" for r in policy.requested)
    factor = ConfidenceFactor(name="policy_loosening", value=0.0, weight=0.0,
                              detail=f"the plan asks to loosen the policy, which only a person may do: {asked}")
    score = min(confidence.score, max(0.0, float(policy.limit("approval_below")) - 0.01))
    return Confidence(score=round(score, 4), level="low", factors=[*confidence.factors, factor])


