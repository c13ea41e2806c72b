"""The engine's entry point to hand-off: seal an attempt, hand it off, judge it, integrate it, record it.

Why a module of its own: it is the only place that sequences the other hand-off modules and owns
the state they share (the watcher, the key, the attempts in flight, the metrics). One hand-off is:

1. **seal**: a working copy of its own for the attempt (:mod:`conductor.git.copies`) at the base
   commit; snapshots of what lies outside it — the project's checkout and Conductor's own files
   (:mod:`conductor.handoff.outside`) and the shared git state (:mod:`conductor.git.shared`);
2. **hand off**: the task file (attempt, nonce, absolute workspace, every limit) written atomically
   into ``pending/``; an agent claims it by rename and writes its result;
3. **judge**: the working copy's tree against the base tree (:mod:`conductor.handoff.tree`), the
   result against the attempt (nonce, written after the claim), the changes against the policy,
   symlinks, the verification commands in a clean checkout of the verified tree, and anything
   that changed outside the attempt while it ran (undone, and named);
4. **integrate**: the step's commit is built by Conductor from the verified tree and merged into
   the fork's branch (a conflict with a parallel step fails the attempt with its reason);
5. **record**: audit log, signed provenance, the verdict file the task named; the working copy of a
   passed attempt is removed, a failed one is kept for inspection until the plan ends.

Every audit record is also passed to ``on_event`` (the language server turns them into
``conductor/stepChanged``). Several attempts may be in flight at once (parallel steps, forks):
each has its own working copy and judges only its own tree. A change outside the attempts fails
every attempt that was running when it happened, with a reason that says they overlapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from conductor import secrets
from conductor.contract.checksum import canonical_json, sha256_hex
from conductor.contract.globs import matches_allowed
from conductor.contract.provenance import AuditAnchor, Evidence, FileDigest, Provenance, Violation
from conductor.contract.result import Result
from conductor.contract.task import Task
from conductor.contract.verdict import Verdict as VerdictRecord
from conductor.git import copies
from conductor.git.branches import integrate
from conductor.git.command import GitError, git
from conductor.git.objects import Entry, TreeIndex, build_commit, objects_dir, read_blobs, tree_index, write_blob
from conductor.git.shared import SharedGit, SharedState
from conductor.handoff.audit import AuditLog, parse_ts, utc_now
from conductor.handoff.claim import withdraw
from conductor.handoff.evidence import (
    Judgement,
    base_evidence,
    check_task_file,
    judge,
    outside_violations,
    primary,
    run_verification,
)
from conductor.handoff.metrics import MetricsAggregator, aggregate, derive_metrics, write_metrics
from conductor.handoff.outside import Checkout, ProjectWatch
from conductor.handoff.results import ResultRead, read_result
from conductor.handoff.state import SavedAttempt, clear_state, interrupted_steps, load_state, save_state
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
from conductor.handoff.tree import IgnoreRules, Scan, scan, stat_cache
from conductor.handoff.watcher import HandoffWatcher
from conductor.policy import load_project_policy
from conductor.policy.merge import EffectivePolicy
from conductor.project.layout import ProjectLayout
from conductor.provenance.chain import append_record
from conductor.provenance.keys import ProjectKey, load_or_create_key
from conductor.sandbox import SandboxSettings
from conductor.storage.atomic import atomic_write_bytes

log = logging.getLogger("conductor.handoff")

T = TypeVar("T")
PolicyProvider = Callable[[str, str], EffectivePolicy]
EventCallback = Callable[[dict[str, Any]], Any]
SETTLE_SECONDS = 0.1
OWNED_REFS = "refs/heads/conductor/"
SEALING_AT_ONCE = 2


@dataclass
class StepOutcome:
    """What happened to one handed-off attempt."""

    plan_id: str
    fork_id: str
    task_id: str
    attempt: int
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
    workspace: Path  # the attempt's working copy (removed when the attempt passed)
    commit: str | None = None  # the step's commit (built from the verified tree)
    fork_head: str | None = None  # the fork's head after integration

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"


@dataclass(eq=False)
class _Attempt:
    """One attempt in flight: what it was handed and the snapshots taken around it."""

    key: tuple[str, str, str]
    base: str
    workspace: Path
    index: TreeIndex
    ignore: IgnoreRules
    cache: dict[str, Any]
    integrate_into: str | None
    checkout: Checkout | None
    shared: SharedState | None
    started: float = field(default_factory=time.monotonic)
    incidents: list[_Incident] = field(default_factory=list)  # outside changes seen (by others) while it ran

    @property
    def entries(self) -> dict[str, Entry]:
        return self.index.entries


@dataclass(eq=False)
class _Incident:
    paths: list[str]
    code: str
    detected_by: tuple[str, str, str]
    overlapping: int


class HandoffCoordinator:
    """Hands attempts to agents through files and judges what comes back (see the module docstring).

    ``policy_provider(plan_id, fork_id)`` gives the effective policy of a step whose spec carries
    none (default: the project policy). Use as ``async with`` or call ``start()`` and ``close()``.
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
        self._metrics: MetricsAggregator | None = None
        self._metrics_dirty = False
        self._metrics_task: asyncio.Task[None] | None = None
        self._started = False
        self._listener_tasks: set[asyncio.Future[Any]] = set()
        self._audits: dict[tuple[str, str], AuditLog] = {}
        self._fork_locks: dict[Any, asyncio.Lock] = {}
        self._attempt_counts: dict[tuple[str, str], dict[str, int]] = {}
        self._active: dict[tuple[str, str, str], _Attempt] = {}
        self._trees: dict[str, tuple[TreeIndex, IgnoreRules]] = {}
        self._watch: ProjectWatch | None = None
        self._shared: SharedGit | None = None
        # Conductor's own ref moves and the checks of shared git state never interleave
        self._git_state = asyncio.Lock()
        # Sealing (a copy, snapshots, the task) runs for at most two attempts at once, so the worker
        # threads stay free for verdicts, which agents are waiting for.
        self._sealing = asyncio.Semaphore(SEALING_AT_ONCE)
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="conductor-handoff")
        # Working copies made ahead of each fork's next attempt, and the background work (making
        # spares, deleting passed attempts' copies, a task being published) close() waits for.
        self._spares: dict[tuple[str, str], list[copies.Spare]] = {}
        self._copy_work: set[asyncio.Future[Any]] = set()

    # lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.layout.handoff_dir.mkdir(parents=True, exist_ok=True)
        await self.watcher.start()
        self._metrics = await self._run(aggregate, self.layout)
        await self._run(self._signing_key)  # created now, never while an attempt is being watched
        self._watch = ProjectWatch(self.layout)
        self._shared = await self._run(self._shared_git)

    def _shared_git(self) -> SharedGit | None:
        try:
            return SharedGit(self.layout.root, owned_prefix=OWNED_REFS)
        except GitError:
            return None  # not a repository (yet): nothing shared to watch

    async def close(self) -> None:
        await self.watcher.stop()
        await self.drop_spares()
        if self._metrics_task is not None:
            self._metrics_task.cancel()
            self._metrics_task = None
        if self._started:
            await self._run(self._write_metrics, None)
        self._started = False
        self._executor.shutdown(wait=False)
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="conductor-handoff")

    async def drop_spares(self) -> None:
        """Finish the background work on working copies and delete the spares (a plan has ended)."""
        while self._copy_work:
            await asyncio.gather(*list(self._copy_work), return_exceptions=True)
        spares = [spare for pool in self._spares.values() for spare in pool]
        self._spares.clear()
        for spare in spares:
            await self._run(_remove_quietly, spare.path)

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

    def _lock(self, key: Any) -> asyncio.Lock:
        return self._fork_locks.setdefault(key, asyncio.Lock())

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (git, hashing, fsync) in the coordinator's worker threads."""
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
                await self._run(self._write_metrics, data)
            await asyncio.sleep(0.25)

    def _write_metrics(self, data: dict[str, Any] | None) -> None:
        """Write ``metrics.json`` (derived from the audit logs when ``data`` is ``None``). It is derived data:
        when it cannot be written (a full disk) the next write or ``conductor metrics`` makes it again."""
        try:
            write_metrics(self.layout, data if data is not None else derive_metrics(self.layout))
        except OSError as exc:
            log.warning("metrics not written: %s", exc)

    def _next_attempt(self, plan_id: str, fork_id: str, task_id: str, wanted: int | None) -> int:
        """The attempt number of the next hand-off of ``task_id``: one more than any before it."""
        key = (plan_id, fork_id)
        counts = self._attempt_counts.get(key)
        if counts is None:
            counts = {}
            for record in self._audit(plan_id, fork_id).records():
                if record.get("event") == "task.created":
                    tid = str(record.get("task_id"))
                    counts[tid] = max(counts.get(tid, 0), int(record.get("attempt") or counts.get(tid, 0) + 1))
            self._attempt_counts[key] = counts
        counts[task_id] = max(counts.get(task_id, 0) + 1, wanted or 0)
        return counts[task_id]

    def _base_tree(self, base: str) -> tuple[TreeIndex, IgnoreRules]:
        if base not in self._trees:
            index = tree_index(self.layout.root, base)
            self._trees[base] = (index, IgnoreRules.of_tree(self.layout.root, index.entries))
            if len(self._trees) > 64:
                self._trees.pop(next(iter(self._trees)))
        return self._trees[base]

    def _outside_snapshot(self) -> tuple[Checkout | None, SharedState | None]:
        checkout = self._watch.snapshot() if self._watch is not None else None
        shared = self._shared.snapshot() if self._shared is not None else None
        return checkout, shared

    def expect_ref(self, ref: str, commit: str) -> None:
        """Conductor itself set ``ref`` to ``commit`` (a fork branch): not a change by any agent."""
        if self._shared is not None:
            self._shared.expect({ref: commit})

    # the hand-off --------------------------------------------------------------------

    async def hand_off(self, spec: TaskSpec, *, base: str | None = None, integrate_into: str | None = None,
                       claim_timeout: float | Literal["task"] | None = "task") -> StepOutcome:
        """Seal an attempt of ``spec`` at commit ``base`` (default ``HEAD``), hand it off, judge it, and — when
        it passes and ``integrate_into`` names a branch — merge its commit into that branch.

        ``claim_timeout``: seconds a task may stay unclaimed (``"task"``: its ``timeout_seconds``;
        ``None``: wait indefinitely).
        """
        if not self._started:
            await self.start()
        spec.plan_id = bare_id(spec.plan_id, "plan_")
        spec.fork_id = bare_id(spec.fork_id, "fork_")
        policy = spec.policy or self.policy_for(spec.plan_id, spec.fork_id)
        if base is None:
            try:
                base = await self._run(git, self.layout.root, "rev-parse", "--verify", "HEAD")
            except GitError as exc:
                raise GitError(f"{self.layout.root} is not a git repository with a commit: every attempt works in "
                               "a copy of a commit (`conductor build` sets one up)") from exc
        spec.base_commit = base
        ensure_fork_dirs(self.layout, spec.plan_id, spec.fork_id)
        # next_task_id + attempt number + write must not interleave within a fork; forks seal side by side
        async with self._lock(("seal", spec.plan_id, spec.fork_id)), self._sealing:
            if spec.task_id is None:
                spec.task_id = await self._run(next_task_id, self.layout, spec.plan_id, spec.fork_id)
            attempt = await self._run(self._next_attempt, spec.plan_id, spec.fork_id, spec.task_id, spec.attempt)
            workspace = self.layout.attempt_dir(spec.plan_id, spec.fork_id, spec.task_id, attempt)
            index, ignore = await self._run(self._base_tree, base)
            await self._working_copy(spec.plan_id, spec.fork_id, workspace, base)
            cache = await self._run(stat_cache, workspace, list(index.entries))
            checkout, shared = await self._run(self._outside_snapshot)
            written = await self._run(prepare_task, self.layout, spec, policy, str(workspace), attempt)
            key = (spec.plan_id, spec.fork_id, spec.task_id)
            active = _Attempt(key, base, workspace, index, ignore, cache, integrate_into, checkout, shared)
            self._active[key] = active
            saved = SavedAttempt(written, base, workspace, integrate_into, checkout, shared)
            await self._run(save_state, self.layout, saved)  # before agents can see it
            await self._run(_set_aside_stale_result, written)
            # Once published, the task's record is written even if whoever waits for it gives up at
            # that moment (the attempt is then reattached on resume, from what was recorded).
            published = asyncio.ensure_future(self._publish(written, active))
            self._copy_work.add(published)  # close() waits for it
            published.add_done_callback(self._copy_work.discard)
            try:
                await asyncio.shield(published)
            except BaseException:
                self._active.pop(key, None)
                raise
        try:
            return await self._follow(written, policy, active, claim_timeout)
        finally:
            self._active.pop(key, None)

    async def _publish(self, written: WrittenTask, active: _Attempt) -> None:
        await self._run(publish_task, written)
        await self._audit_created(written, active.base)

    async def _audit_created(self, written: WrittenTask, base: str, **extra: Any) -> None:
        """The audit's ``task.created`` line of a published task."""
        task = written.task
        await self._audit(task.plan_id, task.fork_id).append_async(
            "task.created", task.task_id, task_digest=written.digest, workspace=task.workspace,
            allowed_files=task.allowed_files, kind=task.kind, timeout_seconds=task.timeout_seconds,
            path=self.layout.relative(written.path), attempt=task.attempt, base=base, **extra)

    async def _working_copy(self, plan_id: str, fork_id: str, workspace: Path, base: str) -> None:
        """The attempt's own working copy at ``base``: the fork's spare when it is still untouched, else a new one."""
        making = [w for w in self._copy_work if getattr(w, "spare_for", None) == (plan_id, fork_id)]
        if making and not self._spares.get((plan_id, fork_id)):  # almost made: sooner than a new copy
            await asyncio.wait(making)
        spares = self._spares.get((plan_id, fork_id))
        while spares:
            if await self._run(copies.adopt, self.layout.root, spares.pop(), workspace, base):
                return
        await self._run(copies.create, self.layout.root, workspace, base)

    def _make_spare(self, plan_id: str, fork_id: str, base: str) -> None:
        """Make the fork's next working copy now, in the background, while this attempt runs."""
        key = (plan_id, fork_id)
        if self._spares.get(key) or any(getattr(w, "spare_for", None) == key for w in self._copy_work):
            return
        dest = self.layout.spare_copy_dir(plan_id, fork_id, secrets_token())

        def done(work: asyncio.Future[copies.Spare]) -> None:
            if not work.cancelled() and work.exception() is None:
                if self._started:
                    self._spares.setdefault(key, []).append(work.result())
                else:
                    self._background(_remove_quietly, dest)
            elif not work.cancelled():
                log.debug("no spare working copy for %s/%s: %s", plan_id, fork_id, work.exception())
                self._background(_remove_quietly, dest)

        work = self._background(copies.prepare, self.layout.root, dest, base)
        work.spare_for = key  # type: ignore[attr-defined]
        work.add_done_callback(done)

    def _background(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        work = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        self._copy_work.add(work)
        work.add_done_callback(self._copy_work.discard)
        return work

    async def _remove_copy(self, plan_id: str, fork_id: str, workspace: Path) -> None:
        """Delete a passed attempt's working copy: moved aside at once, deleted in the background."""
        aside = self.layout.removed_copy_dir(plan_id, fork_id, secrets_token())
        try:
            await self._run(_move_aside, workspace, aside)
        except OSError:
            await self._run(copies.remove, workspace)
            return
        self._background(_remove_quietly, aside)

    def interrupted(self) -> list[tuple[str, str, str]]:
        """Steps a previous coordinator handed off but did not judge: ``(plan_id, fork_id, task_id)``."""
        return interrupted_steps(self.layout)

    async def reattach(self, plan_id: str, fork_id: str, task_id: str, *, policy: EffectivePolicy | None = None,
                       claim_timeout: float | Literal["task"] | None = "task") -> StepOutcome:
        """Carry on with an attempt a stopped coordinator handed off (see :meth:`interrupted`).

        Waits for the claim or result exactly as :meth:`hand_off` would (deadlines count from the
        original hand-off and claim), then judges against the saved base and snapshots.
        """
        if not self._started:
            await self.start()
        plan_id, fork_id = bare_id(plan_id, "plan_"), bare_id(fork_id, "fork_")
        saved = await self._run(load_state, self.layout, plan_id, fork_id, task_id)
        if saved is None:
            raise LookupError(f"no saved hand-off state for {plan_id}/{fork_id}/{task_id}")
        written = saved.written
        fork_dir = self.layout.fork_dir(plan_id, fork_id)
        if not (fork_dir / "pending" / written.path.name).exists() and \
                not (fork_dir / "in_progress" / written.path.name).exists():
            raise LookupError(f"{plan_id}/{fork_id}/{task_id} is neither pending nor in progress; it was being "
                              "recorded when Conductor stopped: inspect its folder")
        if not saved.workspace.is_dir():
            raise LookupError(f"the working copy {saved.workspace} of {plan_id}/{fork_id}/{task_id} is gone")
        claimed_ts: str | None = None
        created = False
        for record in self._audit(plan_id, fork_id).records():
            if record.get("task_id") != task_id:
                continue
            if record.get("event") == "task.created":
                claimed_ts = None
                created = record.get("attempt") == written.task.attempt
            elif record.get("event") == "task.claimed":
                claimed_ts = str(record["ts"])
        if not created:  # published, then stopped before its audit line: written now, marked as such
            await self._audit_created(written, saved.base, recovered=True)
        policy = policy or self.policy_for(plan_id, fork_id)
        index, ignore = await self._run(self._base_tree, saved.base)
        key = (plan_id, fork_id, task_id)
        active = _Attempt(key, saved.base, saved.workspace, index, ignore, {}, saved.integrate_into,
                          saved.checkout, saved.shared)
        if written.task.attempt:
            self._next_attempt(plan_id, fork_id, task_id, written.task.attempt)
        self._active[key] = active
        try:
            return await self._follow(written, policy, active, claim_timeout, resumed=True, claimed_ts=claimed_ts)
        finally:
            self._active.pop(key, None)

    async def _follow(self, written: WrittenTask, policy: EffectivePolicy, active: _Attempt,
                      claim_timeout: float | Literal["task"] | None, *, resumed: bool = False,
                      claimed_ts: str | None = None) -> StepOutcome:
        task = written.task
        audit = self._audit(task.plan_id, task.fork_id)
        fork_dir = self.layout.fork_dir(task.plan_id, task.fork_id)
        pending = written.path
        in_progress = fork_dir / "in_progress" / pending.name
        result_path = fork_dir / "in_progress" / f"{task.task_id}.result.json"
        if not resumed:
            self._make_spare(task.plan_id, task.fork_id, active.base)  # recorded first: nothing queues before it
        limit = float(task.timeout_seconds) if claim_timeout == "task" else claim_timeout
        deadlines = Deadlines.start(float(task.timeout_seconds), limit)
        claimed_at: str | None = None
        if resumed:  # deadlines count from the original hand-off and claim
            now = time.time()
            deadlines.handed_off -= max(0.0, now - parse_ts(written.written_at))
            if claimed_ts is not None and in_progress.exists():
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
                                                           path=self.layout.relative_path(in_progress))
                        claimed_at = str(claimed["ts"])
                    elif deadlines.expired():
                        if withdraw(pending, fork_dir / "failed") is not None:
                            await audit.append_async(
                                "task.unclaimed", task.task_id, waited_seconds=limit,
                                message=f"nobody claimed {task.task_id} within {limit:g}s; withdrawn to failed/")
                            return await self._finish_without_result(
                                written, policy, active, audit, UNCLAIMED,
                                "no agent claimed the task before its timeout", None, None, already_moved=True)
                        continue  # an agent claimed it at the last moment
                    elif not pending.exists():
                        await asyncio.sleep(SETTLE_SECONDS)
                        if not pending.exists() and not in_progress.exists():
                            return await self._finish_without_result(
                                written, policy, active, audit, "evidence/checksum-mismatch",
                                "the task file disappeared from pending/ without being claimed into in_progress/",
                                None, None, checksum_ok=False)
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
                                            self.layout.relative_path(result_path), read.summary())
                                await audit.append_async("result.invalid", task.task_id,
                                                         result_digest=read.digest, diagnostics=read.diagnostics)
                        read = again
                    if read.status == "ok":
                        return await self._finish_result(written, policy, active, audit, read, claimed_at,
                                                         result_path, before_claim)
                    if deadlines.expired():
                        await audit.append_async("task.timeout", task.task_id,
                                                 timeout_seconds=task.timeout_seconds,
                                                 invalid_result=last_invalid is not None)
                        extra = f" (its last result file was invalid: {last_invalid.summary()})" \
                            if last_invalid is not None else ""
                        return await self._finish_without_result(
                            written, policy, active, audit, TIMEOUT,
                            f"no valid result within {task.timeout_seconds}s of the claim{extra}", claimed_at,
                            last_invalid)
                await sub.wait(deadlines.remaining())

    # judging -------------------------------------------------------------------------

    async def _scan(self, active: _Attempt) -> Scan:
        return await self._run(scan, active.workspace, self.layout.root, active.entries, active.ignore, active.cache)

    async def _outside(self, active: _Attempt, task: Task) -> list[Violation]:
        """What changed outside the attempt while it ran: undone, and named (see the module docstring)."""
        checkout = await self._run(self._watch.snapshot) if self._watch is not None else None
        quarantine = self.layout.quarantine_for(task.plan_id, task.fork_id, task.task_id, task.attempt or 0)
        others = [a for a in self._active.values() if a is not active]
        changed: list[str] = []
        git_changes: list[str] = []
        notes: list[str] = []
        if checkout is not None and active.checkout is not None:
            changed = ProjectWatch.changes(active.checkout, checkout)
            if changed and self._watch is not None:
                undo = await self._run(self._watch.undo, active.checkout, changed, quarantine)
                if undo.quarantined:
                    notes.append(f"moved to {self.layout.relative_path(quarantine)}: {', '.join(undo.quarantined[:5])}")
                if undo.left:
                    notes.append(f"left in place (could not be restored): {', '.join(undo.left[:5])}")
                fresh = await self._run(self._watch.snapshot)
                for other in others:  # what was just put back is not their change
                    if other.checkout is not None:
                        for path in changed:
                            if path in fresh.stats:
                                other.checkout.stats[path] = fresh.stats[path]
                            else:
                                other.checkout.stats.pop(path, None)
        if active.shared is not None and self._shared is not None:
            async with self._git_state:
                shared = await self._run(self._shared.snapshot)
                git_changes = self._shared.changes(active.shared, shared)
                if git_changes:
                    failed = await self._run(self._shared.restore, active.shared, shared, quarantine)
                    if failed:
                        notes.append(f"could not undo: {', '.join(failed[:5])}")
                    restored = await self._run(self._shared.snapshot)
                    for other in others:
                        if other.shared is not None:
                            other.shared = _merge_shared(other.shared, active.shared, restored)
        if changed or git_changes:
            incident = _Incident([*changed, *git_changes], "outside", active.key, len(others))
            for other in others:
                other.incidents.append(incident)
        return outside_violations(changed, git_changes, active.incidents, len(others), notes)

    async def _finish_result(self, written: WrittenTask, policy: EffectivePolicy, active: _Attempt, audit: AuditLog,
                             read: ResultRead, claimed_at: str, result_path: Path,
                             before_claim: bool = False) -> StepOutcome:
        task = written.task
        assert read.result is not None
        try:
            result_mtime: float | None = result_path.lstat().st_mtime
        except FileNotFoundError:
            result_mtime = None
        # dated now, stored with the verdict in one fsync: a crash before the verdict judges the result again
        received = audit.record("result.received", task.task_id, result_digest=read.digest,
                                status=read.result.status, executor=read.result.executor,
                                files_changed=read.result.files_changed)
        found = await self._scan(active)
        task_path = result_path.parent / f"{task.task_id}.task.json"
        judgement = judge(task, task_path, written.digest, read.result, found, policy, active.workspace,
                          before_claim=before_claim)
        commit = fork_head = None
        if judgement.verdict == "pass" and task.kind == "step":
            commit = await self._run(self._commit, active, found, task)
            judgement.evidence.commit = commit
            if policy.commands:
                runs = await self._verify(active, task, commit, policy)
                judgement.add_verification(runs, policy.commands)
        judgement.add(await self._outside(active, task))
        if judgement.verdict == "pass" and commit is not None and active.integrate_into:
            async with self._git_state:
                merged = await self._run(integrate, self.layout.root, active.integrate_into, commit,
                                         f"Merge {task.task_id} (attempt {task.attempt}) into "
                                         f"{active.integrate_into}", _git_date(written.written_at), active.base)
                if merged.ok and merged.head:
                    self.expect_ref(active.integrate_into, merged.head)
            if merged.ok:
                fork_head = merged.head
            else:
                judgement.add([Violation(code="evidence/integration-conflict", message=merged.message)])
        return await self._record(written, policy, active, audit, judgement, found, claimed_at, read,
                                  read.result.executor, result_mtime, commit=commit, fork_head=fork_head,
                                  received=received)

    def _commit(self, active: _Attempt, found: Scan, task: Task) -> str:
        """The step's commit, built from the verified tree (never from the agent's index or history)."""
        objects = objects_dir(self.layout.root)
        for data in found.blobs.values():
            write_blob(objects, data)
        title = task.title or task.instruction.splitlines()[0][:72]
        commit, _tree = build_commit(self.layout.root, active.index, found.entries,
                                     f"{task.task_id}: {title}\n\nConductor plan {task.plan_id}, fork {task.fork_id}, "
                                     f"attempt {task.attempt}.", _git_date(task.created_at))
        return commit

    async def _verify(self, active: _Attempt, task: Task, commit: str, policy: EffectivePolicy) -> list[Any]:
        """Run the verification commands in a clean checkout of the verified tree (nothing else in it)."""
        room = self.layout.verify_dir(task.plan_id, task.fork_id, task.task_id, task.attempt or 0)
        await self._run(copies.create, self.layout.root, room, commit)
        try:
            return await run_verification(policy.commands, room, task, SandboxSettings.from_policy(policy),
                                          self.layout.root)
        finally:
            await self._run(copies.remove, room)

    async def _finish_without_result(self, written: WrittenTask, policy: EffectivePolicy, active: _Attempt,
                                     audit: AuditLog, code: str, message: str, claimed_at: str | None,
                                     last_invalid: ResultRead | None, *, already_moved: bool = False,
                                     checksum_ok: bool | None = None) -> StepOutcome:
        """A timeout, an unclaimed task or a vanished task: fails, with what changed as evidence."""
        task = written.task
        found = await self._scan(active)
        if checksum_ok is None:
            folder = "failed" if already_moved else "in_progress"
            task_path = self.layout.state_dir(task.plan_id, task.fork_id, folder) / f"{task.task_id}.task.json"
            checksum_ok, _ = check_task_file(task_path, written.digest)
        evidence = base_evidence(found, [], checksum_ok)
        judgement = Judgement(evidence, "fail", code, message)
        judgement.add([Violation(code=code, message=message)])
        judgement.add(await self._outside(active, task))
        executor = {TIMEOUT: "timeout", UNCLAIMED: "none"}.get(code, "unknown")
        return await self._record(written, policy, active, audit, judgement, found, claimed_at, last_invalid,
                                  executor, None, force_failed=True, already_moved=already_moved)

    # recording -----------------------------------------------------------------------

    async def _record(self, written: WrittenTask, policy: EffectivePolicy, active: _Attempt, audit: AuditLog,
                      judgement: Judgement, found: Scan, claimed_at: str | None, read: ResultRead | None,
                      executor: str, result_mtime: float | None, *, force_failed: bool = False,
                      already_moved: bool = False, commit: str | None = None,
                      fork_head: str | None = None, received: dict[str, Any] | None = None) -> StepOutcome:
        task = written.task
        verdict = judgement.verdict
        state = "completed" if verdict == "pass" and not force_failed else "failed"
        fork_dir = self.layout.fork_dir(task.plan_id, task.fork_id)
        src = fork_dir / "in_progress"
        dest = fork_dir / state
        dest.mkdir(parents=True, exist_ok=True)
        ev = judgement.evidence
        ev.base_commit = active.base
        verified_record = audit.record(
            "step.verified", task.task_id, verdict=verdict, reason_code=judgement.reason_code,
            reason=judgement.reason, created=ev.created, modified=ev.modified, deleted=ev.deleted,
            mode_changed=ev.mode_changed, type_changed=ev.type_changed, outside_changes=ev.outside_changes,
            diff_lines=ev.diff_lines, unreported_changes=ev.unreported_changes, checksum_ok=ev.checksum_ok,
            violations=[v.model_dump(mode="json") for v in ev.violations],
            verification=[c.model_dump(mode="json", exclude={"output_tail"}) for c in ev.verification],
            attempt=task.attempt, commit=commit, fork_head=fork_head)
        verified = (await audit.append_records_async([*([received] if received else []), verified_record]))[-1]

        # Everything that needs space is written before any file of the attempt moves: a full disk
        # (DiskFull) leaves the task and the result in in_progress/ and the saved state in place, so
        # the attempt is reattached and judged again on resume. The result archived is exactly the
        # bytes that were judged.
        task_path = dest / f"{task.task_id}.task.json"
        result_src = src / f"{task.task_id}.result.json"
        expl_src = src / f"{task.task_id}.explanation.md"
        judged_bytes = read is not None and bool(read.data)
        result_dest: Path | None = dest / result_src.name if judged_bytes or os.path.lexists(result_src) else None
        explanation: Path | None = dest / expl_src.name if os.path.lexists(expl_src) else None

        def keep_result() -> None:
            _archive_unfinished_record(dest, task.task_id)
            if judged_bytes and read is not None and result_dest is not None:
                atomic_write_bytes(result_dest, read.data)

        def move() -> None:
            if not already_moved and (src / task_path.name).exists():
                os.replace(src / task_path.name, task_path)
            if judged_bytes:
                with contextlib.suppress(FileNotFoundError):
                    result_src.unlink()
            elif result_dest is not None and os.path.lexists(result_src):
                os.replace(result_src, result_dest)
            if explanation is not None and os.path.lexists(expl_src):
                os.replace(expl_src, explanation)

        await self._run(keep_result)
        finished_at = utc_now()
        paths = sorted({*task_paths(active.entries, found, task.allowed_files), *found.changed})
        before, after = await self._run(_file_digests, self.layout.root, paths, active.entries, found)
        record = Provenance(
            contract_version="2.0", task_id=task.task_id, plan_id=task.plan_id, fork_id=task.fork_id,
            task_digest=written.digest, result_digest=read.digest if read is not None and read.data else None,
            policy_hash="sha256:" + sha256_hex(canonical_json(policy.to_json(show_origin=False))), commit=commit,
            executor=executor,
            materials=[FileDigest(path=p, sha256=before[p]) for p in paths],
            products=[FileDigest(path=p, sha256=after[p]) for p in paths],
            evidence=ev, verdict="pass" if state == "completed" else "fail", reason=judgement.reason,
            started_at=written.written_at, finished_at=finished_at, previous_digest=None,
            audit_anchor=AuditAnchor(seq=int(verified["seq"]), digest=str(verified["digest"])),
        )
        provenance_path = dest / f"{task.task_id}.provenance.json"
        key = await self._run(self._signing_key)
        async with self._lock(fork_dir):  # one chain per fork: queue here, not in worker threads
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
                (json.dumps(secrets.redact(verdict_record.model_dump(mode="json")), indent=2, ensure_ascii=False)
                 + "\n").encode("utf-8"))
        await self._run(move)
        await self._run(clear_state, self.layout, task.plan_id, task.fork_id, task.task_id)
        if state == "completed":
            await self._remove_copy(task.plan_id, task.fork_id, active.workspace)  # a failed one stays for inspection
        return StepOutcome(
            plan_id=task.plan_id, fork_id=task.fork_id, task_id=task.task_id, attempt=task.attempt or 1,
            status=state,  # type: ignore[arg-type]
            verdict="pass" if state == "completed" else "fail", reason_code=judgement.reason_code,
            reason=judgement.reason, evidence=ev, provenance=Provenance.model_validate(signed),
            provenance_path=provenance_path, task_path=task_path, result_path=result_dest,
            explanation_path=explanation, result=read.result if read is not None else None, executor=executor,
            handed_off_at=written.written_at, claimed_at=claimed_at, finished_at=finished_at,
            result_written_at=result_mtime, task_written_at=parse_ts(written.written_at),
            workspace=active.workspace, commit=commit, fork_head=fork_head)

    async def integrate(self, ref: str, commit: str, message: str) -> tuple[bool, str | None, str]:
        """Merge an already verified step commit into ``ref`` (the chosen variant of a forked step)."""
        async with self._git_state:
            merged = await self._run(integrate, self.layout.root, ref, commit, message, _git_date(utc_now()))
            if merged.ok and merged.head:
                self.expect_ref(ref, merged.head)
        return merged.ok, merged.head, merged.message


def task_paths(entries: dict[str, Entry], found: Scan, allowed: list[str]) -> list[str]:
    """Files the step was allowed to touch that exist before or after (its materials/products)."""
    names = set(entries) | set(found.created)
    out = {p for p in names if matches_allowed(p, allowed)}
    out.update(a for a in allowed if not any(ch in a for ch in "*?[") and a.strip())
    return sorted(out)


def _file_digests(repo: Path, paths: list[str], entries: dict[str, Entry],
                  found: Scan) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """SHA-256 of each path's content before (the base tree) and after (the verified tree); ``None`` = absent."""
    after_entries = {p: found.entries[p] if p in found.entries else entries.get(p) for p in paths}
    wanted = {e.sha for e in (*[entries.get(p) for p in paths], *after_entries.values())
              if e is not None and e.sha not in found.blobs}
    blobs = {**read_blobs(repo, wanted), **found.blobs} if wanted else dict(found.blobs)

    def digest(entry: Entry | None) -> str | None:
        if entry is None or entry.sha not in blobs:
            return None
        return hashlib.sha256(blobs[entry.sha]).hexdigest()

    return ({p: digest(entries.get(p)) for p in paths}, {p: digest(after_entries[p]) for p in paths})


def secrets_token() -> str:
    """A unique folder name for a spare or removed working copy."""
    return os.urandom(8).hex()


def _move_aside(workspace: Path, aside: Path) -> None:
    aside.parent.mkdir(parents=True, exist_ok=True)
    os.rename(workspace, aside)


def _remove_quietly(path: Path) -> None:
    try:
        copies.remove(path)
    except OSError as exc:
        log.warning("could not delete %s: %s", path, exc)


def _git_date(iso: str) -> str:
    """A git date (``<epoch> +0000``) from an ISO 8601 UTC timestamp."""
    return f"{int(parse_ts(iso))} +0000"


def _merge_shared(other: SharedState, restoring: SharedState, restored: SharedState) -> SharedState:
    """``other``'s baseline with what was just put back taken as it is now."""
    files = dict(other.files)
    for rel in set(restoring.files) | set(restored.files):
        if rel in restored.files:
            files[rel] = restored.files[rel]
        else:
            files.pop(rel, None)
    refs = dict(other.refs)
    for name in set(restoring.refs) | set(restored.refs):
        if name in restored.refs:
            refs[name] = restored.refs[name]
        else:
            refs.pop(name, None)
    return SharedState(files, refs, restored.index, restored.index_bytes)


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


def _archive_unfinished_record(dest: Path, task_id: str) -> None:
    """Set aside what an interrupted recording of this same attempt left in ``dest`` (a full disk stopped
    it after the provenance was written), so its record stays in the chain and is not overwritten;
    earlier attempts' files were archived when this one was handed off."""
    record = dest / f"{task_id}.provenance.json"
    if not os.path.lexists(record):
        return
    n = 1
    while os.path.lexists(dest / "attempts" / str(n)):
        n += 1
    target = dest / "attempts" / str(n)
    target.mkdir(parents=True)
    for suffix in (".provenance.json", ".result.json"):
        path = dest / f"{task_id}{suffix}"
        if os.path.lexists(path):
            os.replace(path, target / path.name)


def _set_aside_stale_result(written: WrittenTask) -> None:
    """A result already waiting in ``in_progress/`` for a task not yet published answers nothing: move it away."""
    folder = written.path.parent.parent / "in_progress"
    for suffix in (".result.json", ".explanation.md"):
        stale = folder / f"{written.task.task_id}{suffix}"
        if os.path.lexists(stale):
            target = written.path.parent.parent / "failed" / "stale"
            target.mkdir(parents=True, exist_ok=True)
            os.replace(stale, target / f"{stale.name}.{written.task.nonce}")


__all__ = ["HandoffCoordinator", "StepOutcome", "Task", "TaskSpec", "primary"]
