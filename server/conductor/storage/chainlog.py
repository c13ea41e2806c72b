"""An append-only JSON-lines log in which every line carries the digest of the line before.

Each record is stored as one canonical JSON line ``{"seq": n, "prev": …, "digest": …, ...}``
where ``digest`` is the SHA-256 of the line's canonical JSON without ``digest`` and ``prev``
is the digest of the line before. Editing, inserting or deleting a line breaks the chain at
that line, which
:func:`verify_chain` reports with its line number. Appends from several processes are
serialized with an exclusive ``flock`` on the log itself, so the ``prev`` digest a writer
computes is always that of the true last line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 of a stored record's canonical JSON, ``digest`` itself left out."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "digest"})).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """The first place a chained log stops being trustworthy."""

    path: Path
    line: int  # 1-based
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class ChainLog:
    """A hash-chained, append-only JSON-lines file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append ``record`` (without ``seq``/``prev``) and return it as stored."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._tail(fd)
            stored = {**record, "seq": seq, "prev": prev}
            stored["digest"] = record_digest(stored)
            line = _canonical(stored) + b"\n"
            os.write(fd, line)
            os.fsync(fd)
            return stored
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @staticmethod
    def _tail(fd: int) -> tuple[int, str]:
        """Sequence number and digest for the next record, read from the end of the file.

        A torn last line (a writer killed mid-write, so no newline) was never acknowledged;
        it is cut off here, under the lock, before the next record is appended.
        """
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            keep = size
            while keep > 0:
                span = min(4096, keep)
                tail = os.pread(fd, span, keep - span)
                cut = tail.rfind(b"\n")
                if cut >= 0:
                    keep = keep - span + cut + 1
                    break
                keep -= span
            os.ftruncate(fd, max(keep, 0))
            size = max(keep, 0)
        if size == 0:
            return 0, GENESIS
        chunk = 4096
        data = b""
        pos = size
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            data = os.pread(fd, step, pos) + data
            body = data.rstrip(b"\n")
            if b"\n" in body or pos == 0:
                last = body.rsplit(b"\n", 1)[-1]
                break
            chunk *= 2
        record = json.loads(last)
        return int(record["seq"]) + 1, str(record["digest"])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    return  # a torn last line: never acknowledged, ignored by readers
                if raw.strip():
                    yield json.loads(raw)

    def records(self) -> list[dict[str, Any]]:
        return list(self)


def verify_chain(path: str | os.PathLike[str]) -> ChainBreak | None:
    """``None`` when every line links to the one before; otherwise the first broken link."""
    p = Path(path)
    prev = GENESIS
    expected_seq = 0
    with p.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                return ChainBreak(p, number, "last line is incomplete (no newline): truncated or half-written")
            try:
                record = json.loads(raw)
            except ValueError:
                return ChainBreak(p, number, "line is not valid JSON")
            if not isinstance(record, dict):
                return ChainBreak(p, number, "line is not a JSON object")
            if record.get("prev") != prev:
                return ChainBreak(
                    p,
                    number,
                    "digest of the previous line does not match: a line before was edited, inserted or deleted",
                )
            if record.get("seq") != expected_seq:
                return ChainBreak(p, number, f"sequence number {record.get('seq')} where {expected_seq} was expected")
            if record.get("digest") != record_digest(record):
                return ChainBreak(p, number, "line was edited: its content no longer matches its digest")
            prev = record["digest"]
            expected_seq += 1
    return None
