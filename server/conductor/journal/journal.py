"""One plan's journal: append-only, hash-chained, the only record of what happened.

Why it exists: every state change of a plan is an event appended here
(``.conductor/plans/<plan_id>/journal.jsonl``); status, explanations, metrics and resume are
projections of it (:mod:`conductor.journal.projection`). The file is a
:class:`conductor.storage.ChainLog`, so an edited, inserted or deleted line is caught by
:meth:`Journal.verify`, and concurrent appends from several processes are serialized.

:meth:`Journal.append` fsyncs each event (durable, a few thousand per second).
:meth:`Journal.append_many` writes a batch under one lock and one fsync, for importers and
benchmarks; the chain is identical to appending one by one.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conductor.journal.events import Event, JournalError, check_event
from conductor.project.layout import ProjectLayout
from conductor.storage import ChainBreak, ChainLog, verify_chain
from conductor.storage.chainlog import record_digest


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical_line(record: Mapping[str, Any]) -> bytes:
    # Same serialization ChainLog uses, so batched and single appends produce identical chains.
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class Journal:
    """The event journal of one plan."""

    def __init__(self, path: str | os.PathLike[str], plan_id: str) -> None:
        self.path = Path(path)
        self.plan_id = plan_id
        self._log = ChainLog(self.path)

    @classmethod
    def for_plan(cls, layout: ProjectLayout, plan_id: str) -> Journal:
        return cls(layout.journal_file(plan_id), plan_id)

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, plan_id={self.plan_id!r})"

    # -- writing ---------------------------------------------------------------------------
    def _record(self, event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
        check_event(event_type, data)
        record = {"type": event_type, "ts": utc_now(), "plan_id": self.plan_id, "data": dict(data)}
        try:
            json.dumps(record, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise JournalError(f"{event_type} event payload is not plain JSON: {exc}") from None
        return record

    def append(self, event_type: str, /, **data: Any) -> Event:
        """Validate, append durably, and return the event as stored (with ``seq`` and digests)."""
        return Event.from_record(self._log.append(self._record(event_type, data)))

    def append_many(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Append ``(type, data)`` pairs under one lock and one fsync; returns how many.

        Every event is validated before anything is written, so a bad event loses nothing
        and writes nothing.
        """
        records = [self._record(event_type, data) for event_type, data in events]
        if not records:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = ChainLog._tail(fd)
            chunks = []
            for record in records:
                stored = {**record, "seq": seq, "prev": prev}
                stored["digest"] = prev = record_digest(stored)
                chunks.append(_canonical_line(stored))
                seq += 1
            os.write(fd, b"".join(chunks))
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return len(records)

    # -- reading ---------------------------------------------------------------------------
    def records(self) -> Iterator[dict[str, Any]]:
        """The raw stored records, in order.

        A torn last line (a writer killed mid-write: no newline) was never acknowledged and is
        ignored, as :class:`~conductor.storage.ChainLog` does (the next append cuts it off). A
        complete line that is not an event is damage: a :class:`JournalError` naming the line.
        """
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    return
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    record = None
                if not isinstance(record, dict) or "seq" not in record or "type" not in record:
                    raise JournalError(
                        f"{self.path}:{number}: not a journal event (damaged or half-written line); "
                        "Journal.verify() shows where the hash chain breaks"
                    )
                yield record

    def events(
        self,
        *,
        types: str | Iterable[str] | None = None,
        fork_id: str | None = None,
        step_id: str | None = None,
        to_seq: int | None = None,
    ) -> Iterator[Event]:
        """Events in order, optionally only of ``types``, of one fork / step, up to ``to_seq``."""
        wanted = {types} if isinstance(types, str) else (set(types) if types is not None else None)
        for record in self.records():
            if to_seq is not None and record["seq"] > to_seq:
                return
            if wanted is not None and record.get("type") not in wanted:
                continue
            data = record.get("data") or {}
            if fork_id is not None and data.get("fork_id") != fork_id:
                continue
            if step_id is not None and data.get("step_id") != step_id:
                continue
            yield Event.from_record(record)

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())

    def exists(self) -> bool:
        return self.path.exists()

    def verify(self) -> ChainBreak | None:
        """``None`` when the chain is intact, else where it breaks (line and reason)."""
        if not self.path.exists():
            return None
        return verify_chain(self.path)
