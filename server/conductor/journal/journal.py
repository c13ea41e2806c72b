"""One plan's journal: append-only, hash-chained, the only record of what happened.

Why it exists: every state change of a plan is an event appended here
(``.conductor/plans/<plan_id>/journal.jsonl``); status, explanations, metrics and resume are
projections of it (:mod:`conductor.journal.projection`). The file is a
:class:`conductor.storage.ChainLog`, so an edited, inserted or deleted line is caught by
:meth:`Journal.verify`, and concurrent appends from several processes are serialized.

:meth:`Journal.append` returns once the event is fsynced; concurrent appenders share fsyncs
(group commit). :meth:`Journal.append_many` writes a batch under one lock and one fsync, for
importers and benchmarks; the chain is identical to appending one by one. A journal opened
with the project's head signer (``conductor.provenance.heads.plan_journal``) keeps a head signed
with the project key (``journal.jsonl.head``), so cutting lines off its end is detected by
``conductor verify``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orjson import loads as _loads

from conductor import secrets
from conductor.journal import checkpoint as cp
from conductor.journal.events import Event, JournalError, check_event

if TYPE_CHECKING:
    from conductor.journal.projection import PlanState
from conductor.project.layout import ProjectLayout
from conductor.storage import ChainBreak, ChainLog, verify_chain
from conductor.storage.chainlog import HeadSigner


def utc_now() -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (``isoformat`` is several times cheaper than ``strftime``)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


_check_json = json.JSONEncoder(allow_nan=False).encode  # built once: ``json.dumps(..., allow_nan=False)``


class Journal:
    """The event journal of one plan."""

    def __init__(self, path: str | os.PathLike[str], plan_id: str, *, head_signer: HeadSigner | None = None,
                 checkpoint_path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path)
        self.plan_id = plan_id
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.last_rejection: str | None = None  # why the last replay ignored the checkpoint, if it did
        self._log = ChainLog(self.path, head_signer=head_signer)
        self._checkpointed_seq: int | None = None

    @classmethod
    def for_plan(cls, layout: ProjectLayout, plan_id: str, *, head_signer: HeadSigner | None = None) -> Journal:
        """The plan's journal (with its checkpoint). A writer passes the project's ``head_signer``
        (``conductor.provenance.heads.plan_journal`` does), so its appends keep a signed head."""
        return cls(layout.journal_file(plan_id), plan_id, head_signer=head_signer,
                   checkpoint_path=layout.checkpoint_file(plan_id))

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, plan_id={self.plan_id!r})"

    # -- writing ---------------------------------------------------------------------------
    def _record(self, event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
        check_event(event_type, data)
        # the one redaction filter: no event carries a key, whoever appends it
        record = {"type": event_type, "ts": utc_now(), "plan_id": self.plan_id, "data": secrets.redact(dict(data))}
        try:
            _check_json(record)
        except (TypeError, ValueError) as exc:
            raise JournalError(f"{event_type} event payload is not plain JSON: {exc}") from None
        return record

    def append(self, event_type: str, /, **data: Any) -> Event:
        """Validate, append durably, and return the event as stored (with ``seq`` and digests).

        Durable means fsynced; appends from concurrent writers share fsyncs (group commit, see
        :mod:`conductor.storage.chainlog`). A full disk raises :class:`~conductor.storage.DiskFull`
        with nothing written.
        """
        return Event.from_record(self._log.append(self._record(event_type, data)))

    def append_record(self, event_type: str, /, **data: Any) -> dict[str, Any]:
        """Like :meth:`append`, returning the stored record as a plain dict (no model built)."""
        return self._log.append(self._record(event_type, data))

    def append_many(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Append ``(type, data)`` pairs under one lock and one fsync; returns how many.

        Every event is validated before anything is written, so a bad event loses nothing
        and writes nothing; the chain is identical to appending one by one.
        """
        records = [self._record(event_type, data) for event_type, data in events]
        return len(self._log.append_many(records))

    def append_events(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Event]:
        """Like :meth:`append_many` (one lock, one fsync, all or none), returning the events as stored."""
        records = [self._record(event_type, data) for event_type, data in events]
        return [Event.from_record(record) for record in self._log.append_many(records)]

    # -- reading ---------------------------------------------------------------------------
    def records(self) -> Iterator[dict[str, Any]]:
        """The raw stored records, in order.

        A torn last line (a writer killed mid-write: no newline) was never acknowledged and is
        ignored, as :class:`~conductor.storage.ChainLog` does (the next append cuts it off). A
        complete line that is not an event is damage: a :class:`JournalError` naming the line.
        """
        for record, _end in self.scan(0):
            yield record

    def scan(self, offset: int = 0, *, chunk_size: int = 1 << 22) -> Iterator[tuple[dict[str, Any], int]]:
        """``(record, byte offset just past its line)`` for every event from byte ``offset`` on."""
        for lines, number, start, _end in self._chunks(offset, chunk_size):
            pos = start
            for raw in lines:
                number += 1
                pos += len(raw) + 1
                record = self._parse_line(raw, number, offset)
                if record is not None:
                    yield record, pos

    def scan_chunks(self, offset: int = 0, *, chunk_size: int = 1 << 22) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """The records :meth:`scan` yields, a chunk at a time: ``(records, byte offset just past the last)``.

        For a reader of every event (replay): a chunk's lines are parsed in one pass; a chunk
        with anything but events in it (a blank line, damage) goes through :meth:`scan`'s
        line-by-line checks, so the records and errors are the same.
        """
        for lines, number, _start, end in self._chunks(offset, chunk_size):
            try:
                records = [_loads(raw) for raw in lines]
                if not all(type(r) is dict and "seq" in r and "type" in r for r in records):
                    raise ValueError("not only events")
            except ValueError:
                records = []
                for raw in lines:
                    number += 1
                    record = self._parse_line(raw, number, offset)
                    if record is not None:
                        records.append(record)
            yield records, end

    def _chunks(self, offset: int, chunk_size: int) -> Iterator[tuple[list[bytes], int, int, int]]:
        """``(complete lines, lines before them, byte offset of the first, offset past the last)`` from ``offset``.

        The first chunk is small (a reader that stops at the first event reads little), later ones grow.
        """
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return
        with fh:
            fh.seek(offset)
            pos = offset
            number = 0
            rest = b""
            size = min(chunk_size, 1 << 16)
            while True:
                chunk = fh.read(size)
                size = min(size * 4, chunk_size)
                if not chunk:
                    return  # whatever is left in ``rest`` has no newline: torn, never acknowledged
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                if lines:
                    end = pos + sum(map(len, lines)) + len(lines)
                    yield lines, number, pos, end
                    number += len(lines)
                    pos = end

    def _parse_line(self, raw: bytes, number: int, offset: int) -> dict[str, Any] | None:
        """The event on line ``number``; ``None`` for a blank line; damage is a :class:`JournalError`."""
        if not raw or raw.isspace():
            return None
        try:
            record = _loads(raw)
        except ValueError:
            try:
                record = json.loads(raw)  # what orjson refuses and json reads (an integer wider than 64 bits)
            except ValueError:
                record = None
        if type(record) is not dict or "seq" not in record or "type" not in record:
            where = f":{number}" if offset == 0 else f": line {number} after byte {offset}"
            raise JournalError(
                f"{self.path}{where}: not a journal event (damaged or half-written line); "
                "Journal.verify() shows where the hash chain breaks"
            )
        return record

    def maybe_checkpoint(self, state: PlanState, *, every: int | None = None) -> bool:
        """Write a projection checkpoint of ``state`` when it is ``every`` events past the last one.

        For a writer that keeps the projection in memory (``apply`` after each append): call it
        after applying an event this journal object appended; ``state`` must be folded through
        that event. Returns whether a checkpoint was written.
        """
        if self.checkpoint_path is None:
            return False
        every = cp.CHECKPOINT_EVERY if every is None else every
        if self._checkpointed_seq is None:
            found, _why = cp.load_checkpoint(self.checkpoint_path, self.path, self.plan_id, timelines=())
            self._checkpointed_seq = found.seq if found is not None else -1
        if state.last_seq - self._checkpointed_seq < every:
            return False
        tail = self._log.last_appended()
        if tail is None or tail[0] != state.last_seq:
            return False  # the state is not at this writer's last append: nothing cheap to anchor it to
        try:
            cp.write_checkpoint(self.checkpoint_path, self.plan_id, state, tail[1], tail[2])
        except OSError:
            return False
        self._checkpointed_seq = state.last_seq
        return True

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
