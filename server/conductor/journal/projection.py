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

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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
    attempts: int = 0
    confidence: dict[str, Any] | None = None
    executor: str | None = None
    task_path: str | None = None
    checksum: str | None = None
    approved_by: str | None = None
    rejected_by: str | None = None
    verdict: str | None = None
    verdict_reason: str | None = None
    evidence: Any = None
    provenance_path: str | None = None
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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable form (for ``--json``)."""
        data = asdict(self)
        data["tokens"]["total_tokens"] = self.tokens.total_tokens
        for fork_id, fork in self.forks.items():
            data["forks"][fork_id]["status"] = fork.status
        data["counts"] = self.counts()
        return data


def _as_record(event: Event | Mapping[str, Any]) -> tuple[int, str, str, dict[str, Any]]:
    if isinstance(event, Event):
        return event.seq, event.type, event.ts, event.data
    return (
        int(event.get("seq", -1)),
        str(event.get("type", "")),
        str(event.get("ts", "")),
        event.get("data") or {},
    )


def _note(step: StepState, seq: int, ts: str, kind: str, **extra: Any) -> None:
    step.timeline.append({"seq": seq, "ts": ts, "type": kind, **extra})
    if len(step.timeline) > TIMELINE_LIMIT:
        del step.timeline[0]


def apply(state: PlanState, event: Event | Mapping[str, Any]) -> PlanState:
    """Fold one event into ``state`` (in place) and return it."""
    seq, kind, ts, data = _as_record(event)
    plan_id = event.plan_id if isinstance(event, Event) else str(event.get("plan_id") or "")
    state.last_seq = seq
    state.event_count += 1
    state.updated_at = ts or state.updated_at
    if plan_id and not state.plan_id:
        state.plan_id = plan_id

    fork_id = str(data["fork_id"]) if data.get("fork_id") is not None else None
    step_id = str(data["step_id"]) if data.get("step_id") is not None else None
    step = state.step(fork_id, step_id) if fork_id is not None and step_id is not None else None

    if kind == "plan.created":
        state.goal = data.get("goal", "")
        state.mode = data.get("mode", "")
        state.forks_requested = int(data.get("forks") or 0)
        state.config = data.get("config") or {}
        state.status = "running"
        state.created_at = ts
    elif kind == "policy.effective":
        target: StepState | ForkState | PlanState
        target = step if step is not None else (state.fork(fork_id) if fork_id is not None else state)
        target.policy = data.get("policy")
        target.policy_origins = data.get("origins")
    elif kind == "llm.call":
        state.tokens.add(str(data.get("purpose", "")), data.get("usage") or {})
    elif kind == "plan.planned" and fork_id is not None:
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
            _note(planned, seq, ts, kind)
    elif kind == "fork.created" and fork_id is not None:
        fork = state.fork(fork_id)
        fork.branch = data.get("branch")
        fork.worktree = data.get("worktree")
    elif kind == "fork.scored" and fork_id is not None:
        fork = state.fork(fork_id)
        fork.score = data.get("score")
        fork.score_parts = data.get("parts")
    elif kind == "plan.merged":
        state.merged = {"fork_id": fork_id, "branch": data.get("branch"), "commit": data.get("commit")}
    elif kind == "plan.halted":
        state.status = "halted"
        state.halted_reason = data.get("reason")
    elif kind == "plan.resumed":
        state.status = "running"
        state.halted_reason = None
    elif kind == "plan.finished":
        state.status = "finished"
        state.outcome = data.get("outcome")
    elif step is not None and kind.startswith("step."):
        _apply_step(step, kind, data)
        _note(step, seq, ts, kind, **_timeline_detail(kind, data))
    else:
        state.unknown_events += 1
    return state


def _timeline_detail(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    keys = {
        "step.handed_off": ("attempt", "task_path"),
        "step.claimed": ("executor",),
        "step.verified": ("verdict", "reason"),
        "step.failed": ("cause", "reason"),
        "step.approved": ("by",),
        "step.rejected": ("by",),
        "step.repair_planned": ("attempt",),
    }.get(kind, ())
    return {k: data.get(k) for k in keys}


def _apply_step(step: StepState, kind: str, data: Mapping[str, Any]) -> None:
    if kind == "step.confidence":
        step.confidence = data.get("confidence")
    elif kind == "step.waiting_approval":
        step.state = "waiting_approval"
    elif kind == "step.approved":
        step.approved_by = data.get("by")
        if step.state == "waiting_approval":
            step.state = "pending"
    elif kind == "step.rejected":
        step.rejected_by = data.get("by")
        step.state = "skipped"
    elif kind == "step.handed_off":
        step.state = "in_progress"
        step.attempts = max(step.attempts + 1, int(data.get("attempt") or 0))
        step.task_path = data.get("task_path")
        step.checksum = data.get("checksum")
    elif kind == "step.claimed":
        step.state = "in_progress"
        step.executor = data.get("executor")
    elif kind == "step.verified":
        step.verdict = data.get("verdict")
        step.verdict_reason = data.get("reason")
        step.evidence = data.get("evidence")
        step.provenance_path = data.get("provenance_path")
    elif kind == "step.completed":
        step.state = "completed"
        step.failure_cause = step.failure_reason = None
    elif kind == "step.failed":
        step.state = "failed"
        step.failure_cause = data.get("cause")
        step.failure_reason = data.get("reason")
    elif kind == "step.repair_planned":
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


def project(events: Iterable[Event | Mapping[str, Any]]) -> PlanState:
    """The plan state after folding ``events`` (journal ``Event`` s or stored records) in order."""
    state = PlanState()
    for event in events:
        apply(state, event)
    return state


def replay(journal: Journal | Iterable[Event | Mapping[str, Any]], to_seq: int | None = None) -> PlanState:
    """The plan state as of event ``to_seq`` (inclusive; ``None`` = the end)."""
    if isinstance(journal, Journal):
        records: Iterable[Event | Mapping[str, Any]] = journal.records()
        state = PlanState(plan_id=journal.plan_id)
    else:
        records = journal
        state = PlanState()
    for record in records:
        seq = record.seq if isinstance(record, Event) else int(record.get("seq", -1))
        if to_seq is not None and seq > to_seq:
            break
        apply(state, record)
    return state


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
