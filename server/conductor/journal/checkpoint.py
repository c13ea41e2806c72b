"""Projection checkpoints: the folded state of a plan as of one journal event, so status need not replay all.

Why a module of its own: ``status`` and ``explain`` are projections of the journal, and a
long plan has hundreds of thousands of events. A checkpoint (``plans/<id>/checkpoint.json``:
a header line, then the state as canonical JSON on the second line) stores the state after
event ``seq`` together with what it covers — that event's ``seq``,
its chain ``digest`` and the byte ``offset`` just past its line — and the SHA-256 of the
state line (hashing the bytes as stored, so checking it costs no re-serialization). A
reader loads it, checks that the journal line ending at ``offset`` really is event
``seq`` with that digest and that the state hashes to ``state_digest``, then folds only the
events after it. A checkpoint that fails either check is ignored (a full replay is done and
the reason kept in ``last_rejection``); ``conductor verify`` also replays the journal up to
``seq`` and reports a checkpoint whose state differs (one edited with a fresh digest).

Checkpoints are a cache: written atomically, never required, safe to delete. Whoever has
just folded at least :data:`CHECKPOINT_EVERY` events past the last checkpoint writes a new
one (``replay``, or the engine after each append via :meth:`Journal.maybe_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor.storage.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from conductor.journal.projection import PlanState

VERSION = 1
CHECKPOINT_EVERY = 10_000


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 of the state as stored (its canonical JSON)."""
    return hashlib.sha256(_canonical(state)).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    plan_id: str
    seq: int
    digest: str
    offset: int
    state: dict[str, Any]


def write_checkpoint(path: Path, plan_id: str, state: PlanState, digest: str, offset: int) -> None:
    """Store ``state`` (folded through event ``state.last_seq``, whose line ends at ``offset``)."""
    body = _canonical(dataclasses.asdict(state))
    header = {"version": VERSION, "plan_id": plan_id, "seq": state.last_seq, "digest": digest, "offset": offset,
              "state_digest": hashlib.sha256(body).hexdigest()}
    atomic_write_bytes(path, _canonical(header) + b"\n" + body + b"\n")


def _line_ending_at(journal: Path, offset: int) -> dict[str, Any] | None:
    if offset <= 0:
        return None
    with journal.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if offset > size:
            return None
        span = 4096
        while True:
            start = max(0, offset - span)
            fh.seek(start)
            data = fh.read(offset - start)
            if not data.endswith(b"\n"):
                return None
            cut = data.rfind(b"\n", 0, len(data) - 1)
            if cut >= 0 or start == 0:
                try:
                    record = json.loads(data[cut + 1:])
                except ValueError:
                    return None
                return record if isinstance(record, dict) else None
            span *= 4


def load_checkpoint(path: Path, journal: Path, plan_id: str) -> tuple[Checkpoint | None, str | None]:
    """``(checkpoint, None)`` when it is intact and covers a real prefix of ``journal``; else ``(None, why)``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot be read: {exc}"
    first, _, body = raw.partition(b"\n")
    try:
        doc = json.loads(first)
    except ValueError:
        return None, "its first line is not valid JSON (torn or edited)"
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        return None, f"not a version-{VERSION} checkpoint"
    if doc.get("plan_id") != plan_id:
        return None, f"belongs to plan {doc.get('plan_id')!r}, not {plan_id!r}"
    body = body.rstrip(b"\n")
    if hashlib.sha256(body).hexdigest() != doc.get("state_digest"):
        return None, "its state does not match its state_digest: the checkpoint was edited"
    try:
        state = json.loads(body)
    except ValueError:
        return None, "its state is not valid JSON"
    if not isinstance(state, dict):
        return None, "its state is not a JSON object"
    try:
        seq, digest, offset = int(doc["seq"]), str(doc["digest"]), int(doc["offset"])
    except (KeyError, TypeError, ValueError):
        return None, "lacks seq, digest or offset"
    line = _line_ending_at(journal, offset)
    if line is None or line.get("seq") != seq or line.get("digest") != digest:
        return None, (f"covers event {seq} ending at byte {offset}, but the journal has no such line there "
                      "(the journal was cut or rewritten, or the checkpoint edited)")
    return Checkpoint(plan_id, seq, digest, offset, state), None
