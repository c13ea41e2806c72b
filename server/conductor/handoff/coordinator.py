"""The engine's entry point to hand-off: write a task, wait, verify, record, return a verdict.

Why a module of its own: it is the only place that sequences the other handoff modules
(tasks → snapshot → watcher/timeouts → results → evidence → provenance → audit → metrics)
and owns the state they share (the watcher, the key, the active steps per workspace, the
metrics aggregator). Everything it does is also observable through ``on_event``, which
receives every audit record it appends (the language server turns them into
``conductor/stepChanged``, the engine into journal events).

Concurrent steps in one workspace: each step is judged on its own before-snapshot. A change
to a file that another still-active step of the same workspace may change (and this one may
not) is left to that step; when a step is judged, the files it was judged on are accepted
into the before-snapshots of the other active steps. A change no active step may make is
charged to the first step judged. Forks run in their own worktrees and never interfere.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from conductor.contract.provenance import (
    AuditAnchor,
    Evidence,
    FileDigest,
    Provenance,
    Violation,
)
from conductor.contract.result import Result
from conductor.contract.task import Task
from conductor.contract.verdict import Verdict as VerdictRecord
from conductor.handoff.audit import AuditLog, parse_ts, utc_now
from conductor.handoff.claim import withdraw
from conductor.handoff.evidence import Judgement, base_evidence, check_task_file, judge, violations_from_changes
from conductor.handoff.metrics import MetricsAggregator, aggregate, derive_metrics, write_metrics
from conductor.handoff.results import ResultRead, read_result
from conductor.handoff.rollback import RollbackReport, rollback
from conductor.handoff.snapshot import Changes, Snapshot, compare, is_git_worktree, rebase, take_snapshot
from conductor.handoff.state import clear_state, interrupted_steps, load_state, save_state
from conductor.handoff.tasks import (
    TaskSpec,
    WrittenTask,
    bare_id,
    ensure_fork_dirs,
    next_task_id,
    prepare_task,
    publish_task,
)
from conductor.handoff.timeouts import TIMEOUT, UNCLAIMED, Deadlines
from conductor.handoff.watcher import HandoffWatcher
from conductor.policy import load_project_policy
from conductor.policy.globs import matches_allowed
from conductor.policy.merge import EffectivePolicy
from conductor.project.layout import ProjectLayout
from conductor.provenance.chain import append_record
from conductor.provenance.keys import ProjectKey, load_or_create_key
from conductor.storage.atomic import atomic_write_bytes

log = logging.getLogger("conductor.handoff")

T = TypeVar("T")
PolicyProvider = Callable[[str, str], EffectivePolicy]
EventCallback = Callable[[dict[str, Any]], Any]
SETTLE_SECONDS = 0.1


@dataclass
class StepOutcome:
    """What happened to one handed-off step."""

    plan_id: str
    fork_id: str
    task_id: str
    status: Literal["completed", "failed"]
    verdict: Literal["pass", "fail"]
    reason_code: str | None
    reason: str
    evidence: Evidence
    provenance: Provenance
    provenance_path: Path
    task_path: Path
    result_path: Path | None
    explanation_path: Path | None
    result: Result | None
    executor: str
    handed_off_at: str
    claimed_at: str | None
    finished_at: str
    result_written_at: float | None  # epoch seconds (mtime of the result file when ingested)
    task_written_at: float  # epoch seconds
    snapshot: Snapshot = field(repr=False)
    workspace: Path = field(repr=False)

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    @property
    def violating_paths(self) -> list[str]:
        """Workspace files named by a violation (what :meth:`HandoffCoordinator.rollback` restores)."""
        task_file = f"{self.task_id}.task.json"
        return sorted({v.path for v in self.evidence.violations if v.path and v.path != task_file})


@dataclass(eq=False)
class _Active:
    allowed: list[str]
    since: int  # the workspace's judgement counter when this step's snapshot started
    before: Snapshot | None = None


@dataclass
class _Workspace:
    """Steps active in one workspace and the changes judged there (see the module docstring)."""

    active: list[_Active] = field(default_factory=list)
    judged: list[tuple[int, Snapshot, list[str]]] = field(default_factory=list)
    seq: int = 0


class HandoffCoordinator:
    """Hands steps to agents through files and judges what comes back.

    ``policy_provider(plan_id, fork_id)`` gives the effective policy of a step whose spec
    carries none (default: the project policy). Use as ``async with`` or call ``start()``
    and ``close()``.
    """

    def __init__(self, layout: ProjectLayout, policy_provider: PolicyProvider | None = None, *,
                 on_event: EventCallback | None = None, force_polling: bool = False,
                 poll_interval: float = 0.2) -> None:
        self.layout = layout
        self._policy_provider = policy_provider
        self._project_policy: EffectivePolicy | None = None
        self.on_event = on_event
        self.watcher = HandoffWatcher(layout.handoff_dir, force_polling=force_polling, poll_interval=poll_interval)
        self._key: ProjectKey | None = None
        self._workspaces: dict[Path, _Workspace] = {}
        self._metrics: MetricsAggregator | None = None
        self._metrics_dirty = False
        self._metrics_task: asyncio.Task[None] | None = None
        self._started = False
        self._listener_tasks: set[asyncio.Future[Any]] = set()
        self._write_lock = asyncio.Lock()
        self._audits: dict[tuple[str, str], AuditLog] = {}
        self._fork_locks: dict[Path, asyncio.Lock] = {}
        self._git_workspaces: dict[Path, bool] = {}
        self._attempt_counts: dict[tuple[str, str], dict[str, int]] = {}
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="conductor-handoff")

    # lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.layout.handoff_dir.mkdir(parents=True, exist_ok=True)
        await self.watcher.start()
        self._metrics = await self._run(aggregate, self.layout)

    async def close(self) -> None:
        await self.watcher.stop()
        if self._metrics_task is not None:
            self._metrics_task.cancel()
            self._metrics_task = None
        if self._started:
            await self._run(lambda: write_metrics(self.layout, derive_metrics(self.layout)))
        self._started = False
        self._executor.shutdown(wait=False)
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="conductor-handoff")

    async def __aenter__(self) -> HandoffCoordinator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # helpers -------------------------------------------------------------------------

    def policy_for(self, plan_id: str, fork_id: str) -> EffectivePolicy:
        if self._policy_provider is not None:
            return self._policy_provider(plan_id, fork_id)
        if self._project_policy is None:
            self._project_policy = load_project_policy(self.layout.root)
        return self._project_policy

    def _signing_key(self) -> ProjectKey:
        if self._key is None:
            self._key = load_or_create_key(self.layout.keys_dir)
        return self._key

    def _audit(self, plan_id: str, fork_id: str) -> AuditLog:
        key = (plan_id, fork_id)
        if key not in self._audits:
            self._audits[key] = AuditLog(self.layout, plan_id, fork_id, on_record=self._recorded,
                                         executor=self._executor)
        return self._audits[key]

    def _snapshot(self, ws: Path, protected: list[str], baseline: Snapshot | None) -> Snapshot:
        if ws not in self._git_workspaces:  # asked once per workspace, not twice per step
            self._git_workspaces[ws] = is_git_worktree(ws)
        return take_snapshot(ws, protected, baseline, use_git=self._git_workspaces[ws])

    def _next_attempt(self, plan_id: str, fork_id: str, task_id: str) -> int:
        """The attempt number of the next hand-off of ``task_id``: one more than it was handed off before."""
        key = (plan_id, fork_id)
        counts = self._attempt_counts.get(key)
        if counts is None:
            counts = {}
            for record in self._audit(plan_id, fork_id).records():
                if record.get("event") == "task.created":
                    tid = str(record.get("task_id"))
                    counts[tid] = max(counts.get(tid, 0), int(record.get("attempt") or counts.get(tid, 0) + 1))
            self._attempt_counts[key] = counts
        counts[task_id] = counts.get(task_id, 0) + 1
        return counts[task_id]

    def _fork_lock(self, fork_dir: Path) -> asyncio.Lock:
        return self._fork_locks.setdefault(fork_dir, asyncio.Lock())

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking file work (hashing, fsync) in the coordinator's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _recorded(self, record: dict[str, Any]) -> None:
        if self._metrics is not None:
            self._metrics.feed(record)
            self._schedule_metrics()
        if self.on_event is not None:
            try:
                out = self.on_event(record)
                if inspect.isawaitable(out):
                    task = asyncio.ensure_future(out)
                    self._listener_tasks.add(task)
                    task.add_done_callback(self._listener_tasks.discard)
            except Exception:  # a listener must never break hand-off
                log.exception("on_event listener failed")

    def _schedule_metrics(self) -> None:
        self._metrics_dirty = True
        if self._metrics_task is None or self._metrics_task.done():
            with contextlib.suppress(RuntimeError):
                self._metrics_task = asyncio.get_running_loop().create_task(self._flush_metrics())

    async def _flush_metrics(self) -> None:
        while self._metrics_dirty:
            self._metrics_dirty = False
            if self._metrics is not None:
                data = self._metrics.to_json()
                await self._run(write_metrics, self.layout, data)
            await asyncio.sleep(0.25)

    def _workspace(self, workspace: str | os.PathLike[str]) -> tuple[Path, str]:
        path = Path(workspace)
        full = (path if path.is_absolute() else self.layout.root / path).resolve()
        try:
            rel = full.relative_to(self.layout.root).as_posix() or "."
        except ValueError as exc:
            raise ValueError(f"workspace {workspace} is outside the project {self.layout.root}") from exc
        return full, rel

    # the hand-off --------------------------------------------------------------------

    async def hand_off(self, spec: TaskSpec, workspace: str | os.PathLike[str] = ".", *,
                       claim_timeout: float | Literal["task"] | None = "task") -> StepOutcome:
        """Write the task, wait for an agent's result (or a timeout), verify, record; return the verdict.

        ``claim_timeout``: seconds a task may stay unclaimed (``"task"``: its
        ``timeout_seconds``; ``None``: wait indefinitely).
        """
        if not self._started:
            await self.start()
        spec.plan_id = bare_id(spec.plan_id, "plan_")
        spec.fork_id = bare_id(spec.fork_id, "fork_")
        policy = spec.policy or self.policy_for(spec.plan_id, spec.fork_id)
        ws_full, _ = self._workspace(workspace)
        ensure_fork_dirs(self.layout, spec.plan_id, spec.fork_id)
        state = self._workspaces.setdefault(ws_full, _Workspace())
        active = _Active(list(spec.allowed_files), state.seq)
        state.active.append(active)  # registered before the snapshot starts: no judgement is missed
        try:
            active.before = await self._run(self._snapshot, ws_full, policy.protected, None)
            async with self._write_lock:  # next_task_id + write must not interleave between hand-offs
                if spec.task_id is None:
                    spec.task_id = await self._run(next_task_id, self.layout, spec.plan_id, spec.fork_id)
                attempt = await self._run(self._next_attempt, spec.plan_id, spec.fork_id, spec.task_id)
                written = await self._run(prepare_task, self.layout, spec, policy, str(ws_full), attempt)
                await self._run(save_state, self.layout, written, active.before)  # before agents can see it
                await self._run(_set_aside_stale_result, written)
                await self._run(publish_task, written)
            return await self._follow(written, policy, ws_full, active, claim_timeout)
        finally:
            state.active.remove(active)
            oldest = min((a.since for a in state.active), default=state.seq)
            state.judged = [j for j in state.judged if j[0] > oldest]

    def interrupted(self) -> list[tuple[str, str, str]]:
        """Steps a previous coordinator handed off but did not judge: ``(plan_id, fork_id, task_id)``."""
        return interrupted_steps(self.layout)

    async def reattach(self, plan_id: str, fork_id: str, task_id: str, *, policy: EffectivePolicy | None = None,
                       claim_timeout: float | Literal["task"] | None = "task") -> StepOutcome:
        """Carry on with a step a stopped coordinator handed off (see :meth:`interrupted`).

        Waits for the claim or result exactly as :meth:`hand_off` would (deadlines count from
        the original hand-off and claim), then judges against the saved before-snapshot.
        """
        if not self._started:
            await self.start()
        plan_id, fork_id = bare_id(plan_id, "plan_"), bare_id(fork_id, "fork_")
        loaded = await self._run(load_state, self.layout, plan_id, fork_id, task_id)
        if loaded is None:
            raise LookupError(f"no saved hand-off state for {plan_id}/{fork_id}/{task_id}")
        written, before = loaded
        fork_dir = self.layout.fork_dir(plan_id, fork_id)
        if not (fork_dir / "pending" / written.path.name).exists() and \
                not (fork_dir / "in_progress" / written.path.name).exists():
            raise LookupError(f"{plan_id}/{fork_id}/{task_id} is neither pending nor in progress; it was being "
                              "recorded when Conductor stopped: inspect its folder")
        claimed_ts: str | None = None
        for record in self._audit(plan_id, fork_id).records():
            if record.get("task_id") != task_id:
                continue
            if record.get("event") == "task.created":
                claimed_ts = None
            elif record.get("event") == "task.claimed":
                claimed_ts = str(record["ts"])
        policy = policy or self.policy_for(plan_id, fork_id)
        ws_full, _ = self._workspace(written.task.workspace)
        state = self._workspaces.setdefault(ws_full, _Workspace())
        active = _Active(list(written.task.allowed_files), state.seq, before)
        state.active.append(active)
        try:
            return await self._follow(written, policy, ws_full, active, claim_timeout,
                                      resumed=True, claimed_ts=claimed_ts)
        finally:
            state.active.remove(active)

    async def _follow(self, written: WrittenTask, policy: EffectivePolicy, ws: Path, active: _Active,
                      claim_timeout: float | Literal["task"] | None, *, resumed: bool = False,
                      claimed_ts: str | None = None) -> StepOutcome:
        task = written.task
        audit = self._audit(task.plan_id, task.fork_id)
        fork_dir = self.layout.fork_dir(task.plan_id, task.fork_id)
        pending = written.path
        in_progress = fork_dir / "in_progress" / pending.name
        result_path = fork_dir / "in_progress" / f"{task.task_id}.result.json"
        if not resumed:
            await audit.append_async("task.created", task.task_id, task_digest=written.digest,
                                     workspace=task.workspace, allowed_files=task.allowed_files, kind=task.kind,
                                     timeout_seconds=task.timeout_seconds, path=self.layout.relative(pending),
                                     attempt=task.attempt)
        limit = float(task.timeout_seconds) if claim_timeout == "task" else claim_timeout
        deadlines = Deadlines.start(float(task.timeout_seconds), limit)
        claimed_at: str | None = None
        if resumed:  # deadlines count from the original hand-off and claim
            now = time.time()
            deadlines.handed_off -= max(0.0, now - parse_ts(written.written_at))
            if claimed_ts is not None and (fork_dir / "in_progress" / pending.name).exists():
                claimed_at = claimed_ts
                deadlines.claimed = time.monotonic() - max(0.0, now - parse_ts(claimed_ts))
        reported_invalid: set[str] = set()
        last_invalid: ResultRead | None = None
        before_claim = False
        with self.watcher.subscribe([pending, in_progress, result_path]) as sub:
            while True:
                sub.clear()
                if claimed_at is None:
                    if not pending.exists() and in_progress.exists():
                        before_claim = before_claim or _predates(result_path, in_progress)
                        deadlines.mark_claimed()
                        claimed = await audit.append_async("task.claimed", task.task_id,
                                                           path=self.layout.relative(in_progress))
                        claimed_at = str(claimed["ts"])
                    elif deadlines.expired():
                        if withdraw(pending, fork_dir / "failed") is not None:
                            await audit.append_async(
                                "task.unclaimed", task.task_id, waited_seconds=limit,
                                message=f"nobody claimed {task.task_id} within {limit:g}s; withdrawn to failed/")
                            return await self._finish_unclaimed(written, policy, ws, active, audit)
                        continue  # an agent claimed it at the last moment
                    elif not pending.exists():
                        await asyncio.sleep(SETTLE_SECONDS)
                        if not pending.exists() and not in_progress.exists():
                            return await self._finish_missing(written, policy, ws, active, audit)
                        continue
                if claimed_at is not None:
                    read = await self._run(read_result, result_path, task.task_id)
                    if read.status == "invalid":
                        await asyncio.sleep(SETTLE_SECONDS)  # still being written? judge settled bytes only
                        again = await self._run(read_result, result_path, task.task_id)
                        if again.status == "invalid" and again.digest == read.digest:
                            last_invalid = read
                            if read.digest not in reported_invalid:
                                reported_invalid.add(read.digest)
                                log.warning("%s: invalid result %s: %s", task.task_id,
                                            self.layout.relative(result_path), read.summary())
                                await audit.append_async("result.invalid", task.task_id,
                                                         result_digest=read.digest, diagnostics=read.diagnostics)
                        read = again
                    if read.status == "ok":
                        return await self._finish_result(written, policy, ws, active, audit, read, claimed_at,
                                                         result_path, before_claim)
                    if deadlines.expired():
                        await audit.append_async("task.timeout", task.task_id,
                                                 timeout_seconds=task.timeout_seconds,
                                                 invalid_result=last_invalid is not None)
                        return await self._finish_timeout(written, policy, ws, active, audit, claimed_at,
                                                          last_invalid)
                await sub.wait(deadlines.remaining())

    # endings -------------------------------------------------------------------------

    async def _changes(self, ws: Path, active: _Active, policy: EffectivePolicy) -> tuple[Snapshot, Changes]:
        state = self._workspaces[ws]
        before = active.before
        assert before is not None
        after = await self._run(self._snapshot, ws, policy.protected, before)
        # Changes judged for other steps while this one was out (up to this very moment, after the
        # snapshot) are accepted into its baseline; no await between here and the active-steps check.
        for seq, judged_after, paths in state.judged:
            if seq > active.since:
                rebase(before, judged_after, paths)
        active.since = state.seq
        changes = compare(before, after)
        others = [a for a in state.active if a is not active]
        if others:
            left_to_others = {p for p in changes.changed
                              if not matches_allowed(p, active.allowed)
                              and any(matches_allowed(p, o.allowed) for o in others)}
            if left_to_others:
                changes = compare(before, after, only=set(changes.changed) - left_to_others)
        return after, changes

    def _accept_into_others(self, ws: Path, after: Snapshot, changes: Changes) -> None:
        state = self._workspaces[ws]
        state.seq += 1
        state.judged.append((state.seq, after, changes.changed))

    async def _finish_result(self, written: WrittenTask, policy: EffectivePolicy, ws: Path, active: _Active,
                             audit: AuditLog, read: ResultRead, claimed_at: str, result_path: Path,
                             before_claim: bool = False) -> StepOutcome:
        task = written.task
        assert read.result is not None
        try:
            result_mtime: float | None = result_path.stat().st_mtime
        except FileNotFoundError:
            result_mtime = None
        await audit.append_async("result.received", task.task_id, result_digest=read.digest,
                                 status=read.result.status, executor=read.result.executor,
                                 files_changed=read.result.files_changed)
        after, changes = await self._changes(ws, active, policy)
        task_path = result_path.parent / f"{task.task_id}.task.json"
        judgement = await judge(task, task_path, written.digest, read.result, changes, policy, ws,
                                before_claim=before_claim)
        return await self._record(written, policy, ws, active, audit, judgement, after, changes, claimed_at,
                                  read, read.result.executor, result_mtime)

    async def _finish_timeout(self, written: WrittenTask, policy: EffectivePolicy, ws: Path, active: _Active,
                              audit: AuditLog, claimed_at: str, last_invalid: ResultRead | None) -> StepOutcome:
        task = written.task
        after, changes = await self._changes(ws, active, policy)
        task_path = self.layout.state_dir(task.plan_id, task.fork_id, "in_progress") / f"{task.task_id}.task.json"
        checksum_ok, _ = check_task_file(task_path, written.digest)
        evidence = base_evidence(changes, [], checksum_ok)
        extra = " (its last result file was invalid)" if last_invalid is not None else ""
        message = f"no valid result within {task.timeout_seconds}s of the claim{extra}"
        evidence.violations = [Violation(code=TIMEOUT, message=message),
                               *violations_from_changes(changes, task, policy)]
        judgement = Judgement(evidence, "fail", TIMEOUT, message)
        return await self._record(written, policy, ws, active, audit, judgement, after, changes, claimed_at,
                                  last_invalid, "timeout", None, force_failed=True)

    async def _finish_unclaimed(self, written: WrittenTask, policy: EffectivePolicy, ws: Path, active: _Active,
                                audit: AuditLog) -> StepOutcome:
        after, changes = await self._changes(ws, active, policy)
        evidence = base_evidence(changes, [], True)
        evidence.violations = [Violation(code=UNCLAIMED, message="no agent claimed the task before its timeout")]
        judgement = Judgement(evidence, "fail", UNCLAIMED, "no agent claimed the task before its timeout")
        return await self._record(written, policy, ws, active, audit, judgement, after, changes, None, None, "none",
                                  None, force_failed=True, already_moved=True)

    async def _finish_missing(self, written: WrittenTask, policy: EffectivePolicy, ws: Path, active: _Active,
                              audit: AuditLog) -> StepOutcome:
        after, changes = await self._changes(ws, active, policy)
        evidence = base_evidence(changes, [], False)
        msg = "the task file disappeared from pending/ without being claimed into in_progress/"
        evidence.violations = [Violation(code="evidence/checksum-mismatch", message=msg)]
        judgement = Judgement(evidence, "fail", "evidence/checksum-mismatch", msg)
        return await self._record(written, policy, ws, active, audit, judgement, after, changes, None, None,
                                  "unknown", None, force_failed=True)

    async def _record(self, written: WrittenTask, policy: EffectivePolicy, ws: Path, active: _Active,
                      audit: AuditLog, judgement: Judgement, after: Snapshot, changes: Changes,
                      claimed_at: str | None, read: ResultRead | None, executor: str,
                      result_mtime: float | None, *, force_failed: bool = False,
                      already_moved: bool = False) -> StepOutcome:
        task = written.task
        self._accept_into_others(ws, after, changes)
        before = active.before
        assert before is not None
        verdict = judgement.verdict
        state = "completed" if verdict == "pass" and not force_failed else "failed"
        fork_dir = self.layout.fork_dir(task.plan_id, task.fork_id)
        src = fork_dir / "in_progress"
        dest = fork_dir / state
        dest.mkdir(parents=True, exist_ok=True)
        ev = judgement.evidence
        verified = await audit.append_async(
            "step.verified", task.task_id, verdict=verdict, reason_code=judgement.reason_code,
            reason=judgement.reason, created=ev.created, modified=ev.modified, deleted=ev.deleted,
            diff_lines=ev.diff_lines, unreported_changes=ev.unreported_changes, checksum_ok=ev.checksum_ok,
            violations=[v.model_dump(mode="json") for v in ev.violations],
            verification=[c.model_dump(mode="json", exclude={"output_tail"}) for c in ev.verification])

        # Move the step's files; the result archived is exactly the bytes that were judged.
        task_path = dest / f"{task.task_id}.task.json"
        result_dest: Path | None = None
        explanation: Path | None = None

        def move() -> None:
            nonlocal result_dest, explanation
            if not already_moved and (src / task_path.name).exists():
                os.replace(src / task_path.name, task_path)
            result_src = src / f"{task.task_id}.result.json"
            if read is not None and read.data:
                result_dest = dest / result_src.name
                atomic_write_bytes(result_dest, read.data)
                if result_src.exists():
                    result_src.unlink()
            elif result_src.exists():
                result_dest = dest / result_src.name
                os.replace(result_src, result_dest)
            expl_src = src / f"{task.task_id}.explanation.md"
            if expl_src.exists():
                explanation = dest / expl_src.name
                os.replace(expl_src, explanation)

        await self._run(move)
        finished_at = utc_now()
        paths = sorted({p for p in [*before_after_paths(before, after, task.allowed_files),
                                    *changes.changed]})
        record = Provenance(
            contract_version="1.0", task_id=task.task_id, plan_id=task.plan_id, fork_id=task.fork_id,
            task_digest=written.digest, result_digest=read.digest if read is not None and read.data else None,
            executor=executor,
            materials=[FileDigest(path=p, sha256=d) for p, d in before.digests(paths).items()],
            products=[FileDigest(path=p, sha256=d) for p, d in after.digests(paths).items()],
            evidence=ev, verdict="pass" if state == "completed" else "fail", reason=judgement.reason,
            started_at=written.written_at, finished_at=finished_at, previous_digest=None,
            audit_anchor=AuditAnchor(seq=int(verified["seq"]), digest=str(verified["digest"])),
        )
        provenance_path = dest / f"{task.task_id}.provenance.json"
        key = await self._run(self._signing_key)
        async with self._fork_lock(fork_dir):  # one chain per fork: queue here, not in worker threads
            signed, digest = await self._run(
                append_record, fork_dir, provenance_path, record.model_dump(mode="json"), key)
        rel_prov = provenance_path.relative_to(fork_dir).as_posix()
        if state == "completed":
            await audit.append_async("step.completed", task.task_id, verdict="pass", provenance=rel_prov,
                                     provenance_digest=digest, executor=executor)
        else:
            await audit.append_async("step.failed", task.task_id, verdict="fail",
                                     reason_code=judgement.reason_code, reason=judgement.reason,
                                     provenance=rel_prov, provenance_digest=digest, executor=executor)
        if task.verdict_file and task.nonce and task.attempt:
            verdict_record = VerdictRecord(
                contract_version="2.0", task_id=task.task_id, plan_id=task.plan_id, fork_id=task.fork_id,
                attempt=task.attempt, nonce=task.nonce, verdict="pass" if state == "completed" else "fail",
                reason_code=None if state == "completed" else judgement.reason_code, reason=judgement.reason,
                violations=list(ev.violations), provenance=rel_prov, decided_at=finished_at)
            await self._run(atomic_write_bytes, self.layout.verdict_file(
                task.plan_id, task.fork_id, task.task_id, task.attempt),
                (verdict_record.model_dump_json(indent=2) + "\n").encode("utf-8"))
        await self._run(clear_state, self.layout, task.plan_id, task.fork_id, task.task_id)
        return StepOutcome(
            plan_id=task.plan_id, fork_id=task.fork_id, task_id=task.task_id, status=state,  # type: ignore[arg-type]
            verdict="pass" if state == "completed" else "fail", reason_code=judgement.reason_code,
            reason=judgement.reason, evidence=ev, provenance=Provenance.model_validate(signed),
            provenance_path=provenance_path, task_path=task_path, result_path=result_dest,
            explanation_path=explanation, result=read.result if read is not None else None, executor=executor,
            handed_off_at=written.written_at, claimed_at=claimed_at, finished_at=finished_at,
            result_written_at=result_mtime, task_written_at=parse_ts(written.written_at),
            snapshot=before, workspace=ws)

    # rollback ------------------------------------------------------------------------

    async def rollback(self, outcome: StepOutcome, paths: list[str] | None = None) -> RollbackReport:
        """Restore the violating files of a failed step (or ``paths``) from its before-snapshot.

        Only those files are touched; the restoration is recorded in the audit log.
        """
        targets = outcome.violating_paths if paths is None else paths
        report = await self._run(rollback, outcome.snapshot, targets)
        await self._audit(outcome.plan_id, outcome.fork_id).append_async(
            "step.rolled_back", outcome.task_id, **report.to_json())
        return report


def _predates(result_path: Path, claimed_task: Path) -> bool:
    """Whether the result file was there before the task was renamed into ``in_progress/`` (its ctime).

    A rename sets the renamed file's ctime, and no one can set a ctime back, so a result
    written after the claim is never older than the claimed task file.
    """
    try:
        result = os.lstat(result_path)
        task = os.lstat(claimed_task)
    except FileNotFoundError:
        return False
    return result.st_ctime_ns < task.st_ctime_ns


def _set_aside_stale_result(written: WrittenTask) -> None:
    """A result already waiting in ``in_progress/`` for a task not yet published answers nothing: move it away."""
    folder = written.path.parent.parent / "in_progress"
    for suffix in (".result.json", ".explanation.md"):
        stale = folder / f"{written.task.task_id}{suffix}"
        if os.path.lexists(stale):
            target = written.path.parent.parent / "failed" / "stale"
            target.mkdir(parents=True, exist_ok=True)
            os.replace(stale, target / f"{stale.name}.{written.task.nonce}")


def before_after_paths(before: Snapshot, after: Snapshot, allowed: list[str]) -> list[str]:
    """Files the step was allowed to touch that exist before or after (its materials/products)."""
    names = set(before.files) | set(after.files)
    out = {p for p in names if matches_allowed(p, allowed)}
    # Plain (non-glob) allowed entries are listed even when absent on both sides.
    out.update(a for a in allowed if not any(ch in a for ch in "*?[") and a.strip())
    return sorted(out)


__all__ = ["HandoffCoordinator", "StepOutcome", "Task", "TaskSpec"]
