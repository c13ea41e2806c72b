"""The per-fork ``audit.log``: every transition of every handed-off step, hash-chained.

Why a module of its own: the audit log is the record metrics, ``conductor verify`` and
``conductor explain`` read, so its event names and fields are a contract. Each line is a
``storage.ChainLog`` record (it carries the digest of the line before; appends from
several processes are serialized with ``flock``):

``{"event", "ts", "plan_id", "fork_id", "task_id", ...event data, "seq", "prev", "digest"}``

Events: ``task.created``, ``task.claimed``, ``result.received``, ``result.invalid``
(with the diagnostics), ``step.verified`` (verdict + evidence summary), ``step.completed``,
``step.failed`` (with ``reason_code``), ``task.timeout``, ``task.unclaimed``,
``step.rolled_back``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conductor import secrets
from conductor.project.layout import ProjectLayout
from conductor.provenance.heads import project_head_signer
from conductor.storage.chainlog import ChainLog

EVENTS = frozenset({
    "task.created", "task.claimed", "result.received", "result.invalid", "step.verified",
    "step.completed", "step.failed", "task.timeout", "task.unclaimed", "step.rolled_back",
})


def utc_now() -> str:
    """ISO 8601 UTC timestamp with microseconds (``2026-11-26T10:00:00.123456Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> float:
    """Seconds since the epoch of a timestamp written by :func:`utc_now`."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class AuditLog:
    """Appends events to one fork's audit log; ``on_record`` sees each stored line."""

    def __init__(self, layout: ProjectLayout, plan_id: str, fork_id: str,
                 on_record: Callable[[dict[str, Any]], None] | None = None,
                 executor: Executor | None = None) -> None:
        self.plan_id = plan_id
        self.fork_id = fork_id
        self.path: Path = layout.audit_log(plan_id, fork_id)
        self._log = ChainLog(self.path, head_signer=project_head_signer(layout))
        self._on_record = on_record
        self._executor = executor
        self._lock: asyncio.Lock | None = None  # in-process writers queue here, not in worker threads

    def _record(self, event: str, task_id: str | None, data: dict[str, Any]) -> dict[str, Any]:
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}")
        record: dict[str, Any] = {"event": event, "ts": utc_now(), "plan_id": self.plan_id,
                                  "fork_id": self.fork_id}
        if task_id is not None:
            record["task_id"] = task_id
        record.update(secrets.redact(data))  # the one redaction filter: no audit line carries a key
        return record

    def append(self, event: str, task_id: str | None = None, **data: Any) -> dict[str, Any]:
        stored = self._log.append(self._record(event, task_id, data))
        if self._on_record is not None:
            self._on_record(stored)
        return stored

    async def append_async(self, event: str, task_id: str | None = None, **data: Any) -> dict[str, Any]:
        """Like :meth:`append`, with the locked, fsynced write in a worker thread (the loop stays free);
        ``on_record`` still runs on the calling loop."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            loop = asyncio.get_running_loop()
            stored = await loop.run_in_executor(self._executor, self._log.append, self._record(event, task_id, data))
        if self._on_record is not None:
            self._on_record(stored)
        return stored

    def record(self, event: str, task_id: str | None = None, **data: Any) -> dict[str, Any]:
        """An event dated now, to be appended later with others (:meth:`append_records_async`)."""
        return self._record(event, task_id, data)

    async def append_records_async(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append records made by :meth:`record` in order, under one lock and one fsync (all or none)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            loop = asyncio.get_running_loop()
            stored = await loop.run_in_executor(self._executor, self._log.append_many, records)
        if self._on_record is not None:
            for line in stored:
                self._on_record(line)
        return stored

    def records(self) -> list[dict[str, Any]]:
        return self._log.records()
