"""Runs a plan: plans the forks, executes their steps in dependency order, repairs, scores, merges.

Everything the runner decides is first written to the plan's journal; everything it knows
on ``resume`` comes from the journal. A step whose verdict was journaled is never issued
again; a step that was handed off but has no verdict when the engine stopped (crash, kill,
Ctrl-C) is issued again as the same attempt, after its leftover task files are moved aside
and its worktree is returned to the last committed step. Model replies are journaled, so a
resumed plan reuses them instead of asking again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conductor.confidence.scoring import score_step
from conductor.contract.config import Config
from conductor.contract.plan import Plan, PlanStep
from conductor.contract.task import Confidence
from conductor.engine import git
from conductor.engine.llm_executor import serve_fork
from conductor.engine.llm_session import JournaledLLM
from conductor.engine.planning import (
    PlanningError,
    Strategy,
    choose_strategies,
    plan_by_handoff,
    plan_with_llm,
    workspace_files,
)
from conductor.engine.scoring import ForkScore, pick_winner, score_fork
from conductor.handoff.coordinator import HandoffCoordinator, StepOutcome
from conductor.handoff.tasks import TaskSpec
from conductor.history.store import HistoryStore, SuccessRate
from conductor.journal.journal import Journal
from conductor.journal.projection import PlanState, StepState, replay
from conductor.llm import LLMClient, LLMError
from conductor.llm.prompts import repair_prompt
from conductor.policy import merge
from conductor.policy.globs import matches_protected
from conductor.policy.levels import PolicyLevel, load_policy_file
from conductor.policy.merge import EffectivePolicy
from conductor.project.layout import ProjectLayout
from conductor.storage import atomic_write_json
from conductor.validation import validate_document

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


class EngineError(RuntimeError):
    """The plan cannot run as asked; the message says what and where."""


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


def load_config(layout: ProjectLayout) -> Config:
    if not layout.config_file.exists():
        return Config()
    text = layout.config_file.read_text(encoding="utf-8")
    _doc, diagnostics = validate_document(text, "config", path=layout.config_file)
    errors = [d for d in diagnostics if d.severity == 1]
    if errors:
        first = errors[0].format(".conductor/config.yaml")
        raise EngineError(f"invalid configuration: {first}")
    return Config.model_validate(yaml.safe_load(text) or {})


def new_plan_id() -> str:
    return uuid.uuid4().hex[:8]


class PlanRunner:
    """One plan's run (or resumed run) in one process."""

    def __init__(self, layout: ProjectLayout, plan_id: str, options: RunOptions, cancel: asyncio.Event | None = None,
                 llm: Any = None) -> None:
        self.layout = layout
        self.plan_id = plan_id
        self.options = options
        self.cancel = cancel or asyncio.Event()
        self.journal = Journal.for_plan(layout, plan_id)
        self.config = load_config(layout)
        self.mode = options.mode or self.config.mode
        live = llm
        if live is None:
            client = LLMClient(self.config.llm, recorder=None)
            live = client if client.is_configured() else None
        self.llm = JournaledLLM(live, self.journal)
        if isinstance(live, LLMClient):
            live.recorder = self.llm.record
        self.project_level: PolicyLevel | None = load_policy_file(layout.policy_file, ".conductor/policy.yaml")
        self.coordinator: HandoffCoordinator | None = None
        self.history = HistoryStore(layout.history_db)
        self.plans: dict[str, Plan] = {}
        self.worktrees: dict[str, Path] = {}
        self.base_commit = ""
        self._background: set[asyncio.Future[Any]] = set()
        self._reattach: set[tuple[str, str]] = set()  # (fork, step) handed off before a restart, still live

    # ------------------------------------------------------------------ helpers
    def state(self) -> PlanState:
        return replay(self.journal)

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

    def policy_for(self, fork_id: str, step: PlanStep | None) -> tuple[EffectivePolicy, list[PolicyLevel]]:
        levels: list[PolicyLevel] = [self.project_level] if self.project_level else []
        plan = self.plans.get(fork_id)
        display = f".conductor/plans/{self.plan_id}/{fork_id}.plan.json"
        if plan is not None and plan.policy is not None:
            levels.append(PolicyLevel(level="plan", policy=plan.policy, file=display))
        if step is not None and step.policy is not None:
            levels.append(PolicyLevel(level="step", policy=step.policy, file=display))
        return merge(levels), levels

    # ------------------------------------------------------------------ entry points
    async def run(self) -> RunSummary:
        """Start the plan (journal ``plan.created``) and run it to its end or a halt."""
        notes = git.ensure_repository(self.layout.root)
        for note in notes:
            self.progress(note)
        forks = max(1, self.options.forks)
        self.journal.append("plan.created", goal=self.options.goal, mode=self.mode, forks=forks,
                            config=self.config.model_dump(mode="json") | {"base_commit": git.head(self.layout.root),
                                                                          "merge": self.options.merge})
        return await self._drive(notes)

    async def resume(self) -> RunSummary:
        state = self.state()
        if state.status == "finished":
            return self._summary(state, ["the plan had already finished; nothing to do"])
        if state.status == "new":
            raise EngineError(f"plan {self.plan_id} never started (its journal has no plan.created event); "
                              "start the goal again")
        notes = git.recover_after_crash(self.layout.root)
        self.journal.append("plan.resumed")
        self.options.goal = state.goal
        self.options.forks = state.forks_requested or 1
        self.mode = state.mode or self.mode
        self.options.merge = bool(state.config.get("merge", True))
        return await self._drive([f"resumed plan {self.plan_id} from event {state.last_seq}", *notes])

    # ------------------------------------------------------------------ the run
    async def _drive(self, notes: list[str]) -> RunSummary:
        state = self.state()
        self.base_commit = str(state.config.get("base_commit") or git.head(self.layout.root))
        self.coordinator = HandoffCoordinator(self.layout, force_polling=self.options.force_polling)
        await self.coordinator.start()
        try:
            strategies = await self._strategies(state)
            results = await asyncio.gather(
                *(self._run_fork(fork_id, strategy) for fork_id, strategy in strategies.items()),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if self.cancel.is_set():
                self.journal.append("plan.halted", reason="cancelled by the user; `conductor resume` continues")
                return self._summary(self.state(), notes)
            for error in errors:
                if isinstance(error, (PlanningError, LLMError, EngineError, git.GitError)):
                    log.warning("%s", error)
                    notes.append(str(error))
                else:
                    raise error
            return await self._finish(notes)
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.journal.append("plan.halted", reason="interrupted; `conductor resume` continues")
            raise
        finally:
            await self.coordinator.close()
            self.history.close()

    async def _strategies(self, state: PlanState) -> dict[str, Strategy]:
        known = {fid: Strategy(f.strategy, f.summary) for fid, f in state.forks.items() if f.strategy}
        wanted = max(1, state.forks_requested or self.options.forks)
        if len(known) >= wanted:
            return dict(sorted(known.items()))
        files = workspace_files(self.layout.root)
        llm = self.llm if self.uses_llm_planner() else None
        chosen = await choose_strategies(llm, state.goal or self.options.goal, wanted, files)
        fork_ids = ["main"] if wanted == 1 else [f"f{i + 1}" for i in range(wanted)]
        return {fid: known.get(fid, strategy) for fid, strategy in zip(fork_ids, chosen, strict=False)}

    async def _run_fork(self, fork_id: str, strategy: Strategy) -> None:
        state = self.state()
        fork = state.forks.get(fork_id)
        path = self.layout.worktrees_dir / self.plan_id / fork_id
        branch = git.fork_branch(self.plan_id, fork_id)
        worktree = await asyncio.to_thread(git.add_worktree, self.layout.root, path, branch, self.base_commit)
        self.worktrees[fork_id] = worktree.path
        if fork is None or fork.worktree is None:
            self.journal.append("fork.created", fork_id=fork_id, branch=branch,
                                worktree=self.layout.relative(worktree.path))
        plan = await self._plan(fork_id, strategy, state)
        self.plans[fork_id] = plan
        await asyncio.to_thread(self._abandon_interrupted, fork_id)
        stop = asyncio.Event()
        agent = None
        if self.mode == "llm":
            if not self.llm.is_configured() and not self.llm.live:
                raise EngineError("mode is `llm` but no API key is set; use mode `handoff` or set the key")
            agent = asyncio.create_task(serve_fork(self.layout, self.plan_id, fork_id, self.llm, stop))
        try:
            await self._run_steps(fork_id, plan)
        finally:
            stop.set()
            if agent is not None:
                await agent

    async def _plan(self, fork_id: str, strategy: Strategy, state: PlanState) -> Plan:
        recorded = [e for e in self.journal.events(types="plan.planned", fork_id=fork_id)]
        if recorded:
            return Plan.model_validate(recorded[-1].data["plan"])
        policy, _ = self.policy_for(fork_id, None)
        self.progress(f"planning fork {fork_id} ({strategy.name})")
        inputs: dict[str, Any] = {}
        if self.uses_llm_planner():
            files = workspace_files(self.worktrees[fork_id])
            inputs = {"planner": "llm", "files": files, "summary": strategy.summary, "constraints": policy.constraints}
            plan = await plan_with_llm(self.llm, state.goal or self.options.goal, strategy, files, policy)
        else:
            assert self.coordinator is not None
            self._set_aside(fork_id, "step_000")
            planning = asyncio.create_task(plan_by_handoff(self.coordinator, self.plan_id, fork_id,
                                                           state.goal or self.options.goal, strategy,
                                                           self.worktrees[fork_id], policy))
            cancelled = asyncio.create_task(self.cancel.wait())
            await asyncio.wait({planning, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            cancelled.cancel()
            if not planning.done():
                planning.cancel()
                raise PlanningCancelled(f"planning of fork {fork_id} was cancelled")
            plan = planning.result()
        document = plan.model_dump(mode="json", exclude_none=True)
        atomic_write_json(self.layout.plan_dir(self.plan_id) / f"{fork_id}.plan.json", document)
        self.journal.append("plan.planned", fork_id=fork_id, strategy=strategy.name, plan=document, inputs=inputs)
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
            attempt = len(state.repairs) + 1
            verdict: Verdict | None = None
            if state.state == "in_progress":
                verdict = self._journaled_verdict(fork_id, step_id)  # else set aside at fork start
            if verdict is None:
                outcome = await self._execute(fork_id, step, policy, confidence, attempt)
                if outcome is None:
                    return "halted"
                verdict = Verdict.of(outcome)
            if verdict.ok:
                await self._accept(fork_id, step, verdict, attempt, state)
                return "completed"
            await self._reject(fork_id, step, verdict)
            if len(self.state().forks[fork_id].steps[step_id].repairs) >= max_repairs:
                return "failed"
            step = await self._repair(fork_id, step, verdict, attempt)

    # ------------------------------------------------------------------ mid-plan fork of one step
    async def _run_variants(self, fork_id: str, step: PlanStep, policy: EffectivePolicy,
                            confidence: Confidence) -> str:
        """Run a low-confidence step as two variants, each in its own worktree; keep the best.

        Variant 1 is the step as planned. Variant 2 is the model's alternative approach, or,
        without a model, the same step for a second, independent executor. The chosen variant
        is fast-forwarded onto the fork's branch; if none passes, the step continues as a
        normal failed step (repair).
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
            self.journal.append("step.forked", fork_id=fork_id, step_id=step.id, variants=[
                {"variant": sub, "instruction": text, "allowed_files": files}
                for sub, (text, files) in zip(subs, variants, strict=True)])
        self.progress(f"{fork_id}/{step.id} confidence {confidence.score:.2f}: trying {len(subs)} variants")
        base = await asyncio.to_thread(git.head, self.worktrees[fork_id])
        outcomes = await asyncio.gather(*(
            self._run_variant(fork_id, sub, step, text, files, policy, confidence, base)
            for sub, (text, files) in zip(subs, variants, strict=True)))
        if any(o is None for o in outcomes):
            return "halted"
        ranked = sorted(((o.ok, -o.evidence.diff_lines, -i), i) for i, o in enumerate(outcomes) if o is not None)
        best = ranked[-1][1]
        chosen = outcomes[best]
        assert chosen is not None
        if not chosen.ok:
            self.journal.append("step.variant_chosen", fork_id=fork_id, step_id=step.id, variant=None,
                                reason="no variant passed verification")
            return "failed"
        sub = subs[best]
        branch = f"conductor/{self.plan_id}/{fork_id}--{step.id}-v{best + 1}"
        await asyncio.to_thread(git.git, self.worktrees[fork_id], "merge", "--ff-only", "-q", branch)
        self.journal.append("step.variant_chosen", fork_id=fork_id, step_id=step.id, variant=sub,
                            reason=f"passed with {chosen.evidence.diff_lines} changed lines"
                            + ("" if all(o and o.ok for o in outcomes) else "; the other variant failed"))
        self.journal.append("step.verified", fork_id=fork_id, step_id=step.id, verdict=chosen.verdict,
                            reason=chosen.reason, evidence=chosen.evidence.model_dump(mode="json"),
                            provenance_path=self.layout.relative(chosen.provenance_path))
        self.journal.append("step.completed", fork_id=fork_id, step_id=step.id)
        self.step_changed(fork_id, step.id)
        return "completed"

    async def _run_variant(self, fork_id: str, sub: str, step: PlanStep, instruction: str, allowed: list[str],
                           policy: EffectivePolicy, confidence: Confidence, base: str) -> StepOutcome | None:
        assert self.coordinator is not None
        number = sub.rsplit("-v", 1)[1]
        branch = f"conductor/{self.plan_id}/{fork_id}--{step.id}-v{number}"
        path = self.layout.worktrees_dir / self.plan_id / sub
        worktree = await asyncio.to_thread(git.add_worktree, self.layout.root, path, branch, base)
        await asyncio.to_thread(self._set_aside, sub, step.id)
        await asyncio.to_thread(git.discard_changes, worktree.path)
        spec = TaskSpec(plan_id=self.plan_id, fork_id=sub, task_id=step.id, title=f"{step.title} (variant {number})",
                        instruction=instruction, allowed_files=allowed, depends_on=list(step.depends_on),
                        confidence=confidence, policy=policy)
        stop = asyncio.Event()
        agent = (asyncio.create_task(serve_fork(self.layout, self.plan_id, sub, self.llm, stop))
                 if self.mode == "llm" else None)
        try:
            hand_off = asyncio.create_task(self.coordinator.hand_off(spec, worktree.path,
                                                                     claim_timeout=self.options.claim_timeout))
            cancel = asyncio.create_task(self.cancel.wait())
            done, _ = await asyncio.wait({hand_off, cancel}, return_when=asyncio.FIRST_COMPLETED)
            cancel.cancel()
            if hand_off not in done:
                hand_off.cancel()
                return None
            outcome = hand_off.result()
        finally:
            stop.set()
            if agent is not None:
                await agent
        if outcome.ok:
            changed = sorted({*outcome.evidence.created, *outcome.evidence.modified, *outcome.evidence.deleted})
            message = f"{step.id}: {step.title} (variant {number})"
            await asyncio.to_thread(git.commit_paths, worktree.path, changed, message)
        return outcome

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
        self.journal.append("step.confidence", fork_id=fork_id, step_id=step.id,
                            confidence=confidence.model_dump(mode="json"))
        eff = policy.to_json(show_origin=True)
        self.journal.append("policy.effective", fork_id=fork_id, step_id=step.id,
                            policy=policy.to_json(show_origin=False), origins=eff)
        return confidence

    async def _await_approval(self, fork_id: str, step_id: str, confidence: Confidence) -> str:
        self.journal.append("step.waiting_approval", fork_id=fork_id, step_id=step_id)
        self.step_changed(fork_id, step_id)
        self.progress(f"{fork_id}/{step_id} has LOW confidence ({confidence.score:.2f}): waiting for "
                      f"`conductor approve {step_id} --plan {self.plan_id}`")
        if self.options.on_approval:
            result = self.options.on_approval(fork_id, step_id, confidence.model_dump(mode="json"))
            if asyncio.iscoroutine(result):
                self._background.add(asyncio.ensure_future(result))
        while not self.cancel.is_set():
            step = self.state().forks[fork_id].steps[step_id]
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
                if path.exists():
                    target.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target / f"{path.name}.{uuid.uuid4().hex[:6]}")

    def _abandon_interrupted(self, fork_id: str) -> None:
        """Before a (resumed) fork runs: deal with every attempt that has no journaled verdict.

        In handoff mode an attempt whose task is still pending or claimed is *reattached*: the
        agent may still be working (or done), and its result is judged against the snapshot
        saved at hand-off. Any other attempt (llm mode, where the executor died with the
        engine, or no saved state) is set aside and its partial edits discarded with the
        worktree reset; steps with a journaled verdict keep their changes.
        """
        fork = self.state().forks.get(fork_id)
        if fork is None:
            return
        interrupted = [s.step_id for s in fork.steps.values()
                       if s.state == "in_progress" and self._journaled_verdict(fork_id, s.step_id) is None]
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
        if interrupted and not any(s.state == "in_progress" and s.step_id not in interrupted
                                   for s in fork.steps.values()) and not self._reattach:
            git.discard_changes(self.worktrees[fork_id])

    async def _execute(self, fork_id: str, step: PlanStep, policy: EffectivePolicy, confidence: Confidence,
                       attempt: int) -> StepOutcome | None:
        assert self.coordinator is not None
        spec = TaskSpec(plan_id=self.plan_id, fork_id=fork_id, task_id=step.id, title=step.title,
                        instruction=step.instruction, allowed_files=list(step.allowed_files),
                        depends_on=list(step.depends_on), confidence=confidence, policy=policy)
        if (fork_id, step.id) in self._reattach:
            self._reattach.discard((fork_id, step.id))
            self.progress(f"{fork_id}/{step.id} was handed off before the restart: waiting for its result")
            waiting = self.coordinator.reattach(self.plan_id, fork_id, step.id, policy=policy,
                                                claim_timeout=self.options.claim_timeout)
        else:
            task_path = self.layout.state_dir(self.plan_id, fork_id, "pending") / f"{step.id}.task.json"
            self.journal.append("step.handed_off", fork_id=fork_id, step_id=step.id,
                                task_path=self.layout.relative(task_path), checksum=None, attempt=attempt)
            self.step_changed(fork_id, step.id)
            self.progress(f"{fork_id}/{step.id} handed off (attempt {attempt}): {step.title}")
            waiting = self.coordinator.hand_off(spec, self.worktrees[fork_id], claim_timeout=self.options.claim_timeout)
        hand_off = asyncio.create_task(waiting)
        cancel = asyncio.create_task(self.cancel.wait())
        done, _ = await asyncio.wait({hand_off, cancel}, return_when=asyncio.FIRST_COMPLETED)
        if hand_off not in done:
            hand_off.cancel()
            return None
        cancel.cancel()
        outcome = hand_off.result()
        if outcome.claimed_at:
            self.journal.append("step.claimed", fork_id=fork_id, step_id=step.id, executor=outcome.executor)
        self.journal.append("step.verified", fork_id=fork_id, step_id=step.id, verdict=outcome.verdict,
                            reason=outcome.reason, evidence=outcome.evidence.model_dump(mode="json"),
                            provenance_path=self.layout.relative(outcome.provenance_path))
        return outcome

    async def _accept(self, fork_id: str, step: PlanStep, verdict: Verdict, attempt: int,
                      state: StepState) -> None:
        changed = verdict.changed
        await asyncio.to_thread(git.commit_paths, self.worktrees[fork_id], changed, f"{step.id}: {step.title}")
        self.journal.append("step.completed", fork_id=fork_id, step_id=step.id)
        self.step_changed(fork_id, step.id)
        self.history.record_outcome(goal=self.options.goal, title=step.title, instruction=step.instruction,
                                    allowed_files=list(step.allowed_files), outcome="completed",
                                    plan_id=self.plan_id, fork_id=fork_id, step_id=step.id)
        if attempt > 1 and state.repairs:
            last = state.repairs[-1]
            self.history.record_repair(failure_cause=str(last.get("failure_cause") or "unknown"),
                                       original_instruction=str(last.get("previous_instruction") or ""),
                                       original_allowed_files=list(last.get("previous_allowed_files") or []),
                                       evidence_summary=str(last.get("failure_cause") or ""),
                                       fix_instruction=step.instruction, fix_allowed_files=list(step.allowed_files),
                                       succeeded=True, plan_id=self.plan_id, fork_id=fork_id, step_id=step.id)

    async def _reject(self, fork_id: str, step: PlanStep, verdict: Verdict) -> None:
        await asyncio.to_thread(git.restore_paths, self.worktrees[fork_id], verdict.changed)
        cause = verdict.cause or "failed"
        self.journal.append("step.failed", fork_id=fork_id, step_id=step.id, cause=cause, reason=verdict.reason)
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
        self.journal.append("step.repair_planned", fork_id=fork_id, step_id=step.id, attempt=attempt + 1,
                            instruction=instruction, allowed_files=allowed, similar_fixes=fixes)
        self.progress(f"{fork_id}/{step.id} repaired; trying again (attempt {attempt + 1})")
        return step.model_copy(update={"instruction": instruction, "allowed_files": allowed})

    # ------------------------------------------------------------------ the end
    async def _finish(self, notes: list[str]) -> RunSummary:
        state = self.state()
        scores: list[ForkScore] = []
        for fork_id, fork in sorted(state.forks.items()):
            try:
                _, lines = git.diff_stat(self.layout.root, self.base_commit, git.fork_branch(self.plan_id, fork_id))
            except git.GitError:
                lines = 0
            score = score_fork(fork_id, list(fork.steps.values()), lines)
            if fork.score is None:
                self.journal.append("fork.scored", fork_id=fork_id, score=score.score,
                                    parts={**score.parts, "eligible": score.eligible})
            scores.append(score)
        winner = pick_winner(scores)
        summary = RunSummary(self.plan_id, "failed", scores=[s.to_json() for s in scores], notes=notes)
        if winner is None:
            self.journal.append("plan.finished", outcome="failed")
            summary.merge_message = "no fork completed every step; nothing was merged"
            return summary
        summary.winner = winner.fork_id
        summary.outcome = "completed"
        branch = git.fork_branch(self.plan_id, winner.fork_id)
        already = next((fid for fid in sorted(state.forks)
                        if git.is_merged(self.layout.root, git.fork_branch(self.plan_id, fid), self.base_commit)), None)
        if state.merged:
            summary.merged = True
            summary.merge_message = f"already merged {branch}"
        elif already is not None:
            # a merge done just before a crash, not yet journaled: record it, never merge a second fork
            summary.winner, summary.merged = already, True
            branch = git.fork_branch(self.plan_id, already)
            summary.merge_message = f"merged {branch} (before the engine was interrupted)"
            self.journal.append("plan.merged", fork_id=already, branch=branch, commit=git.head(self.layout.root))
        elif self.options.merge:
            merged = await asyncio.to_thread(git.merge_branch, self.layout.root, branch,
                                             f"Conductor plan {self.plan_id}: {state.goal}")
            summary.merged, summary.merge_message = merged.merged, merged.message
            if merged.merged:
                self.journal.append("plan.merged", fork_id=winner.fork_id, branch=branch, commit=merged.commit)
        else:
            summary.merge_message = f"not merged (--no-merge); run `git merge {branch}`"
        self.journal.append("plan.finished", outcome="completed")
        return summary

    def _summary(self, state: PlanState, notes: list[str]) -> RunSummary:
        return RunSummary(self.plan_id, state.outcome or state.status, winner=(state.merged or {}).get("fork_id"),
                          merged=bool(state.merged), notes=notes)


def step_payload(layout: ProjectLayout, plan_id: str, step: StepState) -> dict[str, Any]:
    """The ``conductor/stepChanged`` payload for one step (also used by ``status``)."""
    fork_dir = layout.fork_dir(plan_id, step.fork_id)
    where: dict[str, str | None] = {"task": None, "result": None, "provenance": None}
    for folder in ("completed", "failed", "in_progress", "pending"):
        for key, suffix in (("task", ".task.json"), ("result", ".result.json"), ("provenance", ".provenance.json")):
            path = fork_dir / folder / f"{step.step_id}{suffix}"
            if where[key] is None and path.exists():
                where[key] = str(path)
    confidence = step.confidence
    return {
        "plan_id": plan_id,
        "fork_id": step.fork_id,
        "step_id": step.step_id,
        "title": step.title,
        "state": step.state,
        "confidence": {"score": confidence["score"], "level": confidence["level"]} if confidence else None,
        "reason": step.failure_reason or step.verdict_reason,
        "paths": where,
    }
