"""Plan state computed only from journal events: status, resume, replay-to-a-point.

Why it exists: Conductor is event-sourced. Nothing keeps a mutable "status" anywhere; the
state of a plan is whatever :func:`project` computes by folding its events in order, so
``conductor status``, ``resume`` and ``replay --to N`` can never disagree with the journal.

Step states: ``pending`` → (``waiting_approval`` → ``pending`` | ``skipped``) → ``in_progress``
(handed off / claimed) → ``completed`` | ``failed``; a planned repair sends a failed step
back to ``pending`` with its new instruction. Unknown event types are ignored (a newer
writer must not break an older reader) and counted in ``PlanState.unknown_events``.

The state is made of dataclasses; :meth:`PlanState.to_dict` gives the JSON for ``--json``.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from conductor.journal import checkpoint as cp
from conductor.journal.events import Event
from conductor.journal.journal import Journal

StepStatus = Literal["pending", "waiting_approval", "in_progress", "completed", "failed", "skipped"]
STEP_STATES: tuple[str, ...] = (
    "pending",
    "waiting_approval",
    "in_progress",
    "completed",
    "failed",
    "skipped",
)
DONE_STATES = frozenset({"completed", "skipped"})
TIMELINE_LIMIT = 100  # latest events kept per step for explanations


@dataclass
class StepState:
    """Everything the journal says about one step of one fork."""

    fork_id: str
    step_id: str
    title: str = ""
    instruction: str = ""
    allowed_files: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    rationale: str = ""
    estimated_confidence: float | None = None
    state: StepStatus = "pending"
    since: str | None = None  # when the step entered its current state (the timestamp of that event)
    attempts: int = 0
    confidence: dict[str, Any] | None = None
    executor: str | None = None
    agent_run: dict[str, Any] | None = None
    task_path: str | None = None
    checksum: str | None = None
    approved_by: str | None = None
    rejected_by: str | None = None
    verdict: str | None = None
    verdict_reason: str | None = None
    evidence: Any = None
    provenance_path: str | None = None
    kept_copies: list[str] = field(default_factory=list)  # failed attempts' working copies, kept for inspection
    failure_cause: str | None = None
    failure_reason: str | None = None
    repairs: list[dict[str, Any]] = field(default_factory=list)
    policy: dict[str, Any] | None = None
    policy_origins: Any = None
    timeline: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ForkState:
    """One strategy's worktree and steps."""

    fork_id: str
    strategy: str = ""
    summary: str = ""
    branch: str | None = None
    worktree: str | None = None
    score: float | None = None
    score_parts: Any = None
    policy: dict[str, Any] | None = None
    policy_origins: Any = None
    steps: dict[str, StepState] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``completed`` when every step is done, ``failed`` when one failed, else ``running``/``pending``."""
        states = [s.state for s in self.steps.values()]
        if not states:
            return "pending"
        if all(s in DONE_STATES for s in states):
            return "completed"
        if any(s == "failed" for s in states):
            return "failed"
        if all(s == "pending" for s in states):
            return "pending"
        return "running"


@dataclass
class TokenUsage:
    """Tokens spent on model calls, in total and per purpose."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    by_purpose: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, purpose: str, usage: Mapping[str, Any]) -> None:
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        self.calls += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        slot = self.by_purpose.setdefault(purpose, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
        slot["calls"] += 1
        slot["prompt_tokens"] += prompt
        slot["completion_tokens"] += completion


@dataclass
class PlanState:
    """The state of a plan as of its last folded event."""

    plan_id: str = ""
    goal: str = ""
    mode: str = ""
    forks_requested: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "new"  # new | running | halted | finished
    outcome: str | None = None
    halted_reason: str | None = None
    merged: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None
    policy_origins: Any = None
    tokens: TokenUsage = field(default_factory=TokenUsage)
    forks: dict[str, ForkState] = field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None
    last_seq: int = -1
    event_count: int = 0
    unknown_events: int = 0

    def fork(self, fork_id: str) -> ForkState:
        if fork_id not in self.forks:
            self.forks[fork_id] = ForkState(fork_id=fork_id)
        return self.forks[fork_id]

    def step(self, fork_id: str, step_id: str) -> StepState:
        fork = self.fork(fork_id)
        if step_id not in fork.steps:
            fork.steps[step_id] = StepState(fork_id=fork_id, step_id=step_id)
        return fork.steps[step_id]

    def find_step(self, step_id: str, fork_id: str | None = None) -> StepState | None:
        """The step in ``fork_id``; without one, in the merged fork, else the first fork that has it."""
        if fork_id is not None:
            fork = self.forks.get(fork_id)
            return fork.steps.get(step_id) if fork else None
        order = list(self.forks)
        if self.merged and self.merged.get("fork_id") in self.forks:
            order.remove(self.merged["fork_id"])
            order.insert(0, self.merged["fork_id"])
        for fid in order:
            if step_id in self.forks[fid].steps:
                return self.forks[fid].steps[step_id]
        return None

    def counts(self) -> dict[str, int]:
        """How many steps (over all forks) are in each state."""
        totals = dict.fromkeys(STEP_STATES, 0)
        for fork in self.forks.values():
            for step in fork.steps.values():
                totals[step.state] += 1
        return totals

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanState:
        """The state back from :meth:`to_dict` (or ``dataclasses.asdict``); derived fields are ignored.

        Used to resume folding from a checkpoint: ``from_dict(s.to_dict())`` folds exactly as ``s``.
        """
        tokens = data.get("tokens") or {}
        forks: dict[str, ForkState] = {}
        for fork_id, fork in (data.get("forks") or {}).items():
            steps = {sid: StepState(**{k: v for k, v in step.items() if k in _STEP_FIELDS})
                     for sid, step in (fork.get("steps") or {}).items()}
            forks[fork_id] = ForkState(**{k: v for k, v in fork.items() if k in _FORK_FIELDS and k != "steps"},
                                       steps=steps)
        plain = {k: v for k, v in data.items() if k in _PLAN_FIELDS and k not in ("tokens", "forks")}
        return cls(**plain, forks=forks, tokens=TokenUsage(
            calls=int(tokens.get("calls") or 0), prompt_tokens=int(tokens.get("prompt_tokens") or 0),
            completion_tokens=int(tokens.get("completion_tokens") or 0),
            by_purpose={k: dict(v) for k, v in (tokens.get("by_purpose") or {}).items()}))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable form (for ``--json``)."""
        data = asdict(self)
        data["tokens"]["total_tokens"] = self.tokens.total_tokens
        for fork_id, fork in self.forks.items():
            data["forks"][fork_id]["status"] = fork.status
        data["counts"] = self.counts()
        return data


_STEP_FIELDS = frozenset(f.name for f in fields(StepState))
_FORK_FIELDS = frozenset(f.name for f in fields(ForkState))
_PLAN_FIELDS = frozenset(f.name for f in fields(PlanState))


#: replay's held step events: (fork_id, step_id) → (the step, its latest (seq, ts, type, data))
_Pending = dict[tuple[str, str], tuple[StepState, deque[tuple[int, str, str, Mapping[str, Any]]]]]


def _note(step: StepState, seq: int, ts: str, kind: str, **extra: Any) -> None:
    step.timeline.append({"seq": seq, "ts": ts, "type": kind, **extra})
    if len(step.timeline) > TIMELINE_LIMIT:
        del step.timeline[0]


def apply(state: PlanState, event: Event | Mapping[str, Any]) -> PlanState:
    """Fold one event into ``state`` (in place) and return it.

    A pure fold: the result depends only on ``state`` and ``event``, so an engine can keep a
    projection in memory and apply each event it appends, and a checkpoint plus the events
    after it folds to exactly what a full replay gives. Cost is a few dictionary operations.
    """
    if isinstance(event, Event):
        seq, kind, ts, data, plan_id = event.seq, event.type, event.ts, event.data, event.plan_id
    else:
        seq = event.get("seq", -1)
        if type(seq) is not int:
            seq = int(seq)
        kind = event.get("type") or ""
        ts = event.get("ts") or ""
        data = event.get("data") or {}
        plan_id = event.get("plan_id") or ""
    state.last_seq = seq
    state.event_count += 1
    if ts:
        state.updated_at = ts
    if plan_id and not state.plan_id:
        state.plan_id = str(plan_id)

    fork_id = data.get("fork_id")
    if fork_id is not None and type(fork_id) is not str:
        fork_id = str(fork_id)
    step_id = data.get("step_id")
    step_handler = _STEP_HANDLERS.get(kind) or (_step_other if kind.startswith("step.") else None)
    if fork_id is not None and step_id is not None:
        if step_handler is None:
            state.step(fork_id, str(step_id))  # any event naming a step makes it known
        else:
            step_id = str(step_id)
            fork = state.forks.get(fork_id) or state.fork(fork_id)
            step = fork.steps.get(step_id)
            if step is None:
                step = state.step(fork_id, step_id)
            before = step.state
            step_handler(step, data)
            if step.state != before or step.since is None:
                step.since = ts
            detail = _TIMELINE_KEYS.get(kind)
            entry = {"seq": seq, "ts": ts, "type": kind}
            if detail:
                for key in detail:
                    entry[key] = data.get(key)
            timeline = step.timeline
            timeline.append(entry)
            if len(timeline) > TIMELINE_LIMIT:
                del timeline[0]
            return state
    plan_handler = _PLAN_HANDLERS.get(kind)
    if plan_handler is None or not plan_handler(state, fork_id, data, seq, ts):
        state.unknown_events += 1
    return state


# -- plan-level events: each returns False when the event does not apply (counted as unknown)
def _plan_created(state: PlanState, fork_id: str | None, data: Mapping[str, Any], seq: int, ts: str) -> bool:
    state.goal = data.get("goal", "")
    state.mode = data.get("mode", "")
    state.forks_requested = int(data.get("forks") or 0)
    state.config = data.get("config") or {}
    state.status = "running"
    state.created_at = ts
    return True


def _policy_effective(state: PlanState, fork_id: str | None, data: Mapping[str, Any], seq: int, ts: str) -> bool:
    step_id = data.get("step_id")
    target: StepState | ForkState | PlanState
    if fork_id is not None and step_id is not None:
        target = state.step(fork_id, str(step_id))
    else:
        target = state.fork(fork_id) if fork_id is not None else state
    target.policy = data.get("policy")
    target.policy_origins = data.get("origins")
    return True


def _llm_call(state: PlanState, fork_id: str | None, data: Mapping[str, Any], seq: int, ts: str) -> bool:
    state.tokens.add(str(data.get("purpose", "")), data.get("usage") or {})
    return True


def _plan_planned(state: PlanState, fork_id: str | None, data: Mapping[str, Any], seq: int, ts: str) -> bool:
    if fork_id is None:
        return False
    fork = state.fork(fork_id)
    plan = data.get("plan") or {}
    fork.strategy = data.get("strategy") or plan.get("strategy", "")
    fork.summary = plan.get("summary", "")
    fork.steps = {}
    for spec in plan.get("steps") or []:
        planned = state.step(fork_id, spec["id"])
        planned.title = spec.get("title", "")
        planned.instruction = spec.get("instruction", "")
        planned.allowed_files = list(spec.get("allowed_files") or [])
        planned.depends_on = list(spec.get("depends_on") or [])
        planned.rationale = spec.get("rationale", "")
        planned.estimated_confidence = spec.get("estimated_confidence")
        planned.since = planned.since or ts
        _note(planned, seq, ts, "plan.planned")
    return True


def _fork_created(state: PlanState, fork_id: str | None, data: Mapping[str, Any], seq: int, ts: str) -> bool:
    if fork_id is None:
        return False
    fork = state.fork(fork_id)
    fork.branch = data.get("branch")
    fork.worktree = data.get("worktree")
    return True


def _fork_scored(state: PlanState, fork_id: str | None, data: Mapping[str, Any], seq: int, ts: str) -> bool:
    if fork_id is None:
        return False
    fork = state.fork(fork_id)
    fork.score = data.get("score")
    fork.score_parts = data.get("parts")
    return True


def _plan_merged(state: PlanState, fork_id: str | None, data: Mapping[str, Any], seq: int, ts: str) -> bool:
    state.merged = {"fork_id": fork_id, "branch": data.get("branch"), "commit": data.get("commit")}
    return True


def _plan_halted(state: PlanState, fork_id: str | None, data: Mapping[str, Any], seq: int, ts: str) -> bool:
    state.status = "halted"
    state.halted_reason = data.get("reason")
    return True


def _plan_resumed(state: PlanState, fork_id: str | None, data: Mapping[str, Any], seq: int, ts: str) -> bool:
    state.status = "running"
    state.halted_reason = None
    return True


def _plan_finished(state: PlanState, fork_id: str | None, data: Mapping[str, Any], seq: int, ts: str) -> bool:
    state.status = "finished"
    state.outcome = data.get("outcome")
    return True


_PLAN_HANDLERS = {
    "plan.created": _plan_created,
    "policy.effective": _policy_effective,
    "llm.call": _llm_call,
    "plan.planned": _plan_planned,
    "fork.created": _fork_created,
    "fork.scored": _fork_scored,
    "plan.merged": _plan_merged,
    "plan.halted": _plan_halted,
    "plan.resumed": _plan_resumed,
    "plan.finished": _plan_finished,
}


# -- step events


def _step_confidence(step: StepState, data: Mapping[str, Any]) -> None:
    step.confidence = data.get("confidence")


def _step_waiting(step: StepState, data: Mapping[str, Any]) -> None:
    step.state = "waiting_approval"


def _step_approved(step: StepState, data: Mapping[str, Any]) -> None:
    step.approved_by = data.get("by")
    if step.state == "waiting_approval":
        step.state = "pending"


def _step_rejected(step: StepState, data: Mapping[str, Any]) -> None:
    step.rejected_by = data.get("by")
    step.state = "skipped"


def _step_handed_off(step: StepState, data: Mapping[str, Any]) -> None:
    step.state = "in_progress"
    step.attempts = max(step.attempts + 1, int(data.get("attempt") or 0))
    step.task_path = data.get("task_path")
    step.checksum = data.get("checksum")


def _step_claimed(step: StepState, data: Mapping[str, Any]) -> None:
    step.state = "in_progress"
    step.executor = data.get("executor")


def _step_verified(step: StepState, data: Mapping[str, Any]) -> None:
    step.verdict = data.get("verdict")
    step.verdict_reason = data.get("reason")
    step.evidence = data.get("evidence")
    step.provenance_path = data.get("provenance_path")
    step.agent_run = data.get("agent_run")  # what really ran (the result's agent_run), this attempt
    copy = data.get("workspace")
    if data.get("verdict") == "fail" and isinstance(copy, str) and copy and copy not in step.kept_copies:
        step.kept_copies.append(copy)  # the coordinator removes a passed attempt's copy, keeps a failed one


def _step_completed(step: StepState, data: Mapping[str, Any]) -> None:
    step.state = "completed"
    step.failure_cause = step.failure_reason = None


def _step_failed(step: StepState, data: Mapping[str, Any]) -> None:
    step.state = "failed"
    step.failure_cause = data.get("cause")
    step.failure_reason = data.get("reason")


def _step_repair_planned(step: StepState, data: Mapping[str, Any]) -> None:
    step.repairs.append(
        {
            "attempt": data.get("attempt"),
            "previous_instruction": step.instruction,
            "previous_allowed_files": list(step.allowed_files),
            "failure_cause": step.failure_cause,
            "instruction": data.get("instruction"),
            "allowed_files": data.get("allowed_files"),
            "similar_fixes": data.get("similar_fixes"),
        }
    )
    step.instruction = data.get("instruction") or step.instruction
    step.allowed_files = list(data.get("allowed_files") or step.allowed_files)
    step.state = "pending"


def _step_other(step: StepState, data: Mapping[str, Any]) -> None:
    """A ``step.*`` event that changes no field (``step.forked``, ``step.variant_chosen``, newer ones)."""


_STEP_HANDLERS = {
    "step.confidence": _step_confidence,
    "step.waiting_approval": _step_waiting,
    "step.approved": _step_approved,
    "step.rejected": _step_rejected,
    "step.handed_off": _step_handed_off,
    "step.claimed": _step_claimed,
    "step.verified": _step_verified,
    "step.completed": _step_completed,
    "step.failed": _step_failed,
    "step.repair_planned": _step_repair_planned,
}
_TIMELINE_KEYS: dict[str, tuple[str, ...]] = {
    "step.handed_off": ("attempt", "task_path"),
    "step.claimed": ("executor",),
    "step.verified": ("verdict", "reason"),
    "step.failed": ("cause", "reason"),
    "step.approved": ("by",),
    "step.rejected": ("by",),
    "step.repair_planned": ("attempt",),
}


def _fold_records(state: PlanState, records: Iterable[Mapping[str, Any]],
                  pending: _Pending) -> None:
    """Fold stored records exactly as :func:`apply` does, faster, for replay.

    The only difference is when the steps' timelines are built: a step event is kept as a raw
    ``(seq, ts, type, data)`` in ``pending`` (at most :data:`TIMELINE_LIMIT` per step, the ones
    a timeline would keep) and :func:`_flush_timelines` turns them into timeline entries — before
    any ``plan.planned`` (which adds entries of its own) and at the end of the replay. Nothing
    reads a timeline while folding, so the state is the same; ``test_checkpoint`` checks it.
    """
    step_handlers = _STEP_HANDLERS
    plan_handlers = _PLAN_HANDLERS
    forks = state.forks
    count = 0
    last_seq = state.last_seq
    updated_at = state.updated_at
    # only plan.planned replaces steps, and it flushes (emptying ``pending``): an entry never outlives its step
    try:
        for record in records:
            seq = record["seq"]  # scan_chunks yields only records with "seq" and "type"
            if type(seq) is not int:
                seq = int(seq)
            kind = record["type"] or ""
            ts = record.get("ts") or ""
            data = record.get("data") or {}
            count += 1
            last_seq = seq
            if ts:
                updated_at = ts
            if not state.plan_id:
                plan_id = record.get("plan_id")
                if plan_id:
                    state.plan_id = str(plan_id)
            fork_id = data.get("fork_id")
            if fork_id is not None and type(fork_id) is not str:
                fork_id = str(fork_id)
            step_id = data.get("step_id")
            handler = step_handlers.get(kind)
            if handler is None and kind.startswith("step."):
                handler = _step_other
            if fork_id is not None and step_id is not None:
                if handler is None:
                    state.step(fork_id, str(step_id))  # any event naming a step makes it known
                else:
                    if type(step_id) is not str:
                        step_id = str(step_id)
                    held = pending.get((fork_id, step_id))
                    if held is None:
                        fork = forks.get(fork_id) or state.fork(fork_id)
                        step = fork.steps.get(step_id) or state.step(fork_id, step_id)
                        held = pending[(fork_id, step_id)] = (step, deque(maxlen=TIMELINE_LIMIT))
                    step = held[0]
                    before = step.state
                    handler(step, data)
                    if step.state != before or step.since is None:
                        step.since = ts
                    held[1].append((seq, ts, kind, data))
                    continue
            if kind == "plan.planned":
                _flush_timelines(pending)
            plan_handler = plan_handlers.get(kind)
            if plan_handler is None or not plan_handler(state, fork_id, data, seq, ts):
                state.unknown_events += 1
    finally:
        state.event_count += count
        state.last_seq = last_seq
        state.updated_at = updated_at


def _flush_timelines(pending: _Pending) -> None:
    """Append the held step events to their steps' timelines as :func:`apply` would have."""
    keys = _TIMELINE_KEYS
    for step, held in pending.values():
        timeline = step.timeline
        for seq, ts, kind, data in held:
            entry = {"seq": seq, "ts": ts, "type": kind}
            detail = keys.get(kind)
            if detail:
                for key in detail:
                    entry[key] = data.get(key)
            timeline.append(entry)
        if len(timeline) > TIMELINE_LIMIT:
            del timeline[:len(timeline) - TIMELINE_LIMIT]
    pending.clear()


def project(events: Iterable[Event | Mapping[str, Any]]) -> PlanState:
    """The plan state after folding ``events`` (journal ``Event`` s or stored records) in order."""
    state = PlanState()
    for event in events:
        apply(state, event)
    return state


def replay(journal: Journal | Iterable[Event | Mapping[str, Any]], to_seq: int | None = None, *,
           use_checkpoint: bool = True, timelines: Collection[str] | None = None) -> PlanState:
    """The plan state as of event ``to_seq`` (inclusive; ``None`` = the end).

    For a :class:`Journal` with a checkpoint file, a valid checkpoint at or before ``to_seq`` is
    the starting point (see :mod:`conductor.journal.checkpoint`); having folded at least
    ``CHECKPOINT_EVERY`` events past it, a full replay to the end writes a new one.

    ``timelines`` names the step ids whose timelines the caller reads (``None``: every step's);
    every other step's timeline is left empty, so the checkpoint's timelines — the bulk of a long
    plan's — need not be read (``status`` passes ``()``, ``explain`` the one step).
    """
    if not isinstance(journal, Journal):
        state = PlanState()
        for record in journal:
            seq = record.seq if isinstance(record, Event) else int(record.get("seq", -1))
            if to_seq is not None and seq > to_seq:
                break
            apply(state, record)
        return _keep_timelines(state, timelines)
    return _fold_journal(journal, to_seq, use_checkpoint, timelines)[0]


def replay_for_writer(journal: Journal) -> tuple[PlanState, int]:
    """The plan state at the end of ``journal`` and the byte offset just past the last line folded.

    For a writer that keeps the state in memory and reads on from there what other processes
    append (a person's approval): :meth:`Journal.scan` from that offset yields every later event.
    """
    return _fold_journal(journal, None, True, None)


def _keep_timelines(state: PlanState, wanted: Collection[str] | None) -> PlanState:
    if wanted is not None:
        for fork in state.forks.values():
            for step in fork.steps.values():
                if step.timeline and step.step_id not in wanted:
                    step.timeline = []
    return state


def _fold_journal(journal: Journal, to_seq: int | None, use_checkpoint: bool,
                  timelines: Collection[str] | None = None) -> tuple[PlanState, int]:
    state: PlanState | None = None
    complete = True  # every timeline folded in: the state may be written as a checkpoint
    offset = 0
    since_checkpoint = 0
    path = journal.checkpoint_path if use_checkpoint else None
    if path is not None:
        found, why = cp.load_checkpoint(path, journal.path, journal.plan_id, timelines=timelines)
        journal.last_rejection = why
        if found is not None and (to_seq is None or found.seq <= to_seq):
            state = PlanState.from_dict(found.state)
            offset = found.offset
            complete = found.complete
    if state is None:
        state = PlanState(plan_id=journal.plan_id)
    pending: _Pending = {}
    with _collector_paused():
        end, last, since_checkpoint = _fold_chunks(journal, state, offset, to_seq, pending)
    _flush_timelines(pending)
    last_digest = last.get("digest", "") if last is not None else ""
    if path is not None and to_seq is None and since_checkpoint >= cp.CHECKPOINT_EVERY and last_digest:
        if not complete:  # a partial state cannot be checkpointed: fold all once (and checkpoint it)
            whole, whole_end = _fold_journal(journal, None, use_checkpoint=True)
            return _keep_timelines(whole, timelines), whole_end
        with contextlib.suppress(OSError):  # a cache: a full disk or read-only folder just means no checkpoint
            cp.write_checkpoint(path, journal.plan_id, state, last_digest, end)
    return _keep_timelines(state, timelines), end


def _fold_chunks(journal: Journal, state: PlanState, offset: int, to_seq: int | None,
                 pending: _Pending,
                 ) -> tuple[int, Mapping[str, Any] | None, int]:
    """Fold the journal from byte ``offset``; ``(offset past the last folded line, last record, how many)``."""
    last: Mapping[str, Any] | None = None
    end = offset
    folded = 0
    for records, chunk_end in journal.scan_chunks(offset):
        if to_seq is not None:
            kept = list(itertools.takewhile(lambda r: r["seq"] <= to_seq, records))
            if len(kept) < len(records):
                records, chunk_end = kept, -1  # stops inside this chunk (and writes no checkpoint)
        _fold_records(state, records, pending)
        if records:
            last = records[-1]
            folded += len(records)
        end = chunk_end
        if chunk_end < 0:
            break
    return end, last, folded


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while replay folds.

    Folding allocates millions of small containers and frees none of them through cycles; with
    the collector running, a replay of 10^6 events spends about half its time in collections that
    find nothing (measured in ``bench/bench_journal.py``). Reference counting still frees
    everything as usual; the collector is resumed (if it was on) as soon as the fold ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def steps_needing_work(state: PlanState, fork_id: str | None = None) -> list[StepState]:
    """Steps not completed or skipped, in plan order — what ``resume`` may (re)issue, and nothing else."""
    forks = (
        [state.forks[fork_id]]
        if fork_id is not None and fork_id in state.forks
        else ([] if fork_id is not None else list(state.forks.values()))
    )
    return [step for fork in forks for step in fork.steps.values() if step.state not in DONE_STATES]


def ready_steps(state: PlanState, fork_id: str) -> list[StepState]:
    """Pending steps of ``fork_id`` whose dependencies are all completed or skipped."""
    fork = state.forks.get(fork_id)
    if fork is None:
        return []
    done = {sid for sid, s in fork.steps.items() if s.state in DONE_STATES}
    return [s for s in fork.steps.values() if s.state == "pending" and all(d in done for d in s.depends_on)]


def check_against_replay(journal: Path, plan_id: str, path: Path) -> str | None:
    """``None`` when the checkpoint at ``path`` equals a full replay up to the event it covers; else what is wrong."""
    checkpoint, why = cp.load_checkpoint(path, journal, plan_id)
    if checkpoint is None:
        return f"ignored by readers: {why}" if why else None
    replayed = replay(Journal(journal, plan_id), to_seq=checkpoint.seq, use_checkpoint=False)
    if asdict(replayed) != asdict(PlanState.from_dict(checkpoint.state)):
        return (f"does not equal a replay of the journal up to event {checkpoint.seq}: its state was edited "
                "(readers would show it; delete the file to rebuild it)")
    return None
