"""Projection checkpoints: the folded state of a plan as of one journal event, so status need not replay all.

Why a module of its own: ``status`` and ``explain`` are projections of the journal, and a
long plan has hundreds of thousands of events. A checkpoint (``plans/<id>/checkpoint.json``)
stores the state after event ``seq`` together with what it covers — that event's ``seq``,
its chain ``digest`` and the byte ``offset`` just past its line. Its shape is chosen so that a
reader pays only for what it shows:

* line 1, the header: what it covers, ``state_digest`` and ``timelines_digest`` (SHA-256 of
  the bytes as stored, so checking costs no re-serialization) and ``timelines``: the
  ``[fork_id, step_id, length]`` of each timeline line, in order;
* line 2, the state as canonical JSON *without* the steps' timelines (a plan's summary:
  plan, forks, steps with their state, confidence, verdict … — what ``status`` shows);
* then one line per step that has a timeline, ``[fork_id, step_id, timeline]``: the latest
  events of that step (the bulk of a long plan's checkpoint), read only by a reader that
  wants them — all of them for a full state, one step's for ``explain``.

A reader loads it, checks that the journal line ending at ``offset`` really is event ``seq``
with that digest and that the parts it reads hash to their digests, then folds only the
events after it. A checkpoint that fails a check is ignored (a full replay is done and the
reason kept in ``last_rejection``); ``conductor verify`` also replays the journal up to
``seq`` and reports a checkpoint whose state differs (one edited with a fresh digest).

Checkpoints are a cache: written atomically, never required, safe to delete. Whoever has
just folded at least :data:`CHECKPOINT_EVERY` events past the last one, with every timeline,
writes a new one (``replay``, or the engine after each append via
:meth:`Journal.maybe_checkpoint`). A version-1 checkpoint (state and timelines on one line)
is ignored and rewritten by the next full replay.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor.storage.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from conductor.journal.projection import PlanState

VERSION = 2
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
    #: every step's timeline is in ``state`` (``False``: only those asked for, the others empty)
    complete: bool = True


def write_checkpoint(path: Path, plan_id: str, state: PlanState, digest: str, offset: int) -> None:
    """Store ``state`` (folded through event ``state.last_seq``, whose line ends at ``offset``)."""
    data = dataclasses.asdict(state)
    index: list[list[Any]] = []
    lines: list[bytes] = []
    for fork_id, fork in data["forks"].items():
        for step_id, step in fork["steps"].items():
            timeline = step.pop("timeline", None)
            if timeline:
                line = _canonical([fork_id, step_id, timeline]) + b"\n"
                index.append([fork_id, step_id, len(line)])
                lines.append(line)
    body = _canonical(data)
    timelines = b"".join(lines)
    header = {"version": VERSION, "plan_id": plan_id, "seq": state.last_seq, "digest": digest, "offset": offset,
              "state_digest": hashlib.sha256(body).hexdigest(),
              "timelines_digest": hashlib.sha256(timelines).hexdigest(), "timelines": index}
    atomic_write_bytes(path, _canonical(header) + b"\n" + body + b"\n" + timelines)


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


def _attach_timelines(state: dict[str, Any], index: Any, raw: bytes, wanted: Collection[str] | None) -> str | None:
    """Put the timelines of the ``wanted`` step ids (all when ``None``) into ``state``; else why not."""
    if not isinstance(index, list):
        return "lacks its timelines index"
    forks = state.get("forks")
    if not isinstance(forks, dict):
        return "its state has no forks object"
    pos = 0
    for entry in index:
        if not (isinstance(entry, list) and len(entry) == 3 and type(entry[2]) is int and entry[2] > 0):
            return "its timelines index is malformed"
        fork_id, step_id, length = entry
        end = pos + length
        if wanted is None or step_id in wanted:
            try:
                line = json.loads(raw[pos:end])
            except ValueError:
                line = None
            step = (forks.get(fork_id) or {}).get("steps", {}).get(step_id) if isinstance(fork_id, str) else None
            if (not isinstance(line, list) or len(line) != 3 or line[0] != fork_id or line[1] != step_id
                    or not isinstance(line[2], list) or not isinstance(step, dict)):
                return f"its timeline of {fork_id}/{step_id} does not match its index or its state"
            step["timeline"] = line[2]
        pos = end
    if pos != len(raw):
        return "its timelines do not add up to its timelines index"
    return None


def load_checkpoint(path: Path, journal: Path, plan_id: str, *,
                    timelines: Collection[str] | None = None) -> tuple[Checkpoint | None, str | None]:
    """``(checkpoint, None)`` when it is intact and covers a real prefix of ``journal``; else ``(None, why)``.

    ``timelines``: the step ids whose timelines to read (``None``: every step's, a full state);
    the others are left out of the state (empty), and neither read nor hashed.
    """
    try:
        with path.open("rb") as fh:
            first = fh.readline()
            body = fh.readline()
            rest = fh.read() if timelines is None or timelines else b""
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot be read: {exc}"
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
    if timelines is None or timelines:
        if hashlib.sha256(rest).hexdigest() != doc.get("timelines_digest"):
            return None, "its timelines do not match its timelines_digest: the checkpoint was edited"
        why = _attach_timelines(state, doc.get("timelines"), rest, timelines)
        if why is not None:
            return None, why
    return Checkpoint(plan_id, seq, digest, offset, state, complete=timelines is None), None
