"""An append-only JSON-lines log in which every line carries the digest of the line before.

Each record is stored as one canonical JSON line ``{"seq": n, "prev": …, "digest": …, ...}``
where ``digest`` is the SHA-256 of the line's canonical JSON without ``digest`` and ``prev``
is the digest of the line before. Editing, inserting or deleting a line breaks the chain at
that line, which :func:`verify_chain` reports with its line number.

Writing, in two phases:

1. **Append** under an exclusive ``flock`` on the log itself, so the ``prev`` digest a writer
   computes is always that of the true last line. The lines are written whole or not at all:
   a short write or ``ENOSPC``/``EDQUOT`` cuts the file back to where it was and raises
   :class:`~conductor.storage.errors.DiskFull`, so nothing is torn and a sequence number is
   never given to two lines (the cut-off record was never acknowledged).
2. **Group commit**: the writer then takes the log's sync lock (``flock`` on the sidecar
   ``<log>.sync``, which also holds how far the log is known durable). If a writer that held
   the lock before already fsynced past this writer's line, there is nothing to do; otherwise
   it fsyncs once for every line written so far — so writers waiting at the same time share
   one fsync. Waiters hold the lock shared and the fsyncing writer exclusively, so all the
   writers one fsync covered go on together when it ends. :meth:`ChainLog.append` returns only
   when its line is durable.

Threads of one process go through a leader: it writes every queued record in one batch,
passes the lead on (the next batch is written while this one is fsynced) and fsyncs, after
giving this process's writes already under way up to :data:`SETTLE_SECONDS` to land, so one
fsync covers them too.

With a ``head_signer``, the writer that fsyncs also rewrites ``<log>.head``: a signed
statement of how many lines the log had and the digest of the last one, so cutting lines off
the end of the log (which leaves a valid chain) is detected. The head is written after the
fsync it describes; after a crash it may lag behind the log, never run ahead of it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor.storage.errors import DiskFull, is_disk_full

GENESIS = "0" * 64
SYNC_SUFFIX = ".sync"
HEAD_SUFFIX = ".head"
_SYNC = struct.Struct("<QQ")  # (inode, durable byte offset)
_COMMIT_TRIES = 8  # non-blocking tries for the exclusive sync lock before waiting for it
SETTLE_SECONDS = 0.001  # how long an fsync may wait for this process's appends already under way

#: Turns ``{"log", "count", "last_seq", "last_digest", "size"}`` into the document stored as ``<log>.head``.
#: ``None`` means "cannot sign now": the head is left as it was.
HeadSigner = Callable[[dict[str, Any]], dict[str, Any] | None]


#: ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, built once (``dumps``
#: with arguments builds a new encoder on every call, a good part of an append's cost)
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _canonical(record: dict[str, Any]) -> bytes:
    return _encode(record).encode()


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 of a stored record's canonical JSON, ``digest`` itself left out."""
    if "digest" in record:
        record = {k: v for k, v in record.items() if k != "digest"}
    return hashlib.sha256(_encode(record).encode()).hexdigest()


def head_path(log: str | os.PathLike[str]) -> Path:
    p = Path(log)
    return p.with_name(p.name + HEAD_SUFFIX)


def sync_path(log: str | os.PathLike[str]) -> Path:
    p = Path(log)
    return p.with_name(p.name + SYNC_SUFFIX)


@dataclass(frozen=True)
class ChainBreak:
    """The first place a chained log stops being trustworthy."""

    path: Path
    line: int  # 1-based
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def _write_whole(fd: int, data: bytes, start: int, path: Path) -> None:
    """Write all of ``data`` at the end of ``fd`` (opened ``O_APPEND``), or cut back to ``start`` and raise."""
    view = memoryview(data)
    done = 0
    try:
        while done < len(data):
            written = os.write(fd, view[done:])
            if written <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            done += written
    except OSError as exc:
        os.ftruncate(fd, start)
        if is_disk_full(exc):
            raise DiskFull(path, len(data) - done, code=exc.errno or errno.ENOSPC) from exc
        raise


def _last_line(fd: int, size: int) -> bytes:
    """The last complete line of the first ``size`` bytes (which end with a newline)."""
    chunk = 4096
    while True:
        start = max(0, size - chunk)
        data = os.pread(fd, size - start, start)
        body = data[:-1] if data.endswith(b"\n") else data
        cut = body.rfind(b"\n")
        if cut >= 0 or start == 0:
            return body[cut + 1:]
        chunk *= 4


class _Slot:
    __slots__ = ("done", "error", "record", "stored", "taken")

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.stored: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.taken = False  # in a leader's batch: written (or being written), waiting for its fsync
        self.done = False


class ChainLog:
    """A hash-chained, append-only JSON-lines file with durable, group-committed appends."""

    def __init__(self, path: str | os.PathLike[str], *, head_signer: HeadSigner | None = None) -> None:
        self.path = Path(path)
        self.head_signer = head_signer
        self._tail_cache: tuple[int, int, int, str] | None = None  # (inode, size, next seq, last digest)
        self._sync_cache: tuple[Path, str] | None = None
        self._cache_lock = threading.Lock()
        self._turn = threading.Condition()  # threads of one process: one leader writes everyone's records
        self._waiting: list[_Slot] = []
        self._leading = False

    # -- writing ---------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append ``record`` (without ``seq``/``prev``) durably and return it as stored.

        Threads of one process appending at the same time are written together: one of them
        (the leader) writes every waiting record in one locked write (all or none of them), then
        hands the lead on *before* it fsyncs, so the next batch is written while this one syncs;
        the fsyncs themselves are shared through the sync lock (see the module docstring).
        """
        slot = _Slot(record)
        with self._turn:
            self._waiting.append(slot)
            while not slot.done and (slot.taken or self._leading):
                self._turn.wait()
            if slot.done:
                batch = []
            else:
                batch, self._waiting, self._leading = self._waiting, [], True
                for s in batch:
                    s.taken = True
        if batch:
            fd: int | None = None
            try:
                try:
                    fd, end, stored = self._write_batch([s.record for s in batch])
                finally:
                    with self._turn:  # the next leader may write while this batch is fsynced
                        self._leading = False
                        self._turn.notify_all()
                self._commit(fd, end, settle=True)
                for s, line in zip(batch, stored, strict=True):
                    s.stored = line
            except BaseException as exc:
                for s in batch:
                    s.error = exc
            finally:
                if fd is not None:
                    os.close(fd)
                with self._turn:
                    for s in batch:
                        s.done = True
                    self._turn.notify_all()
        if slot.error is not None:
            raise slot.error
        assert slot.stored is not None
        return slot.stored

    def append_many(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append several records under one lock and one (shared) fsync; all or none are written."""
        pending = list(records)
        if not pending:
            return []
        fd, end, stored = self._write_batch(pending)
        try:
            self._commit(fd, end)
            return stored
        finally:
            os.close(fd)

    def _write_batch(self, pending: list[dict[str, Any]]) -> tuple[int, int, list[dict[str, Any]]]:
        """Write ``pending`` at the end of the log under its lock; ``(open fd, end offset, stored records)``.

        Nothing is durable yet: the caller fsyncs with :meth:`_commit` and closes the fd.
        """
        try:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            except FileNotFoundError:  # the first append: make the folder
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull(self.path, None, code=exc.errno or errno.ENOSPC) from exc
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                seq, prev, start = self._tail(fd)
                stored: list[dict[str, Any]] = []
                chunks: list[bytes] = []
                for record in pending:
                    line = {**record, "seq": seq, "prev": prev}
                    line["digest"] = prev = record_digest(line)
                    stored.append(line)
                    chunks.append(_canonical(line) + b"\n")
                    seq += 1
                data = b"".join(chunks)
                _write_whole(fd, data, start, self.path)
                end = start + len(data)
                with self._cache_lock:
                    self._tail_cache = (os.fstat(fd).st_ino, end, seq, prev)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(fd)
            raise
        return fd, end, stored

    def last_appended(self) -> tuple[int, str, int] | None:
        """``(seq, digest, end offset)`` of the last line this object appended, if any."""
        with self._cache_lock:
            cached = self._tail_cache
        return (cached[2] - 1, cached[3], cached[1]) if cached is not None and cached[2] > 0 else None

    def _commit(self, fd: int, end: int, *, settle: bool = False) -> None:
        """Make the log durable at least up to byte ``end`` (group commit, see the module docstring).

        ``settle``: before an fsync, let this process's appenders that are already queued or being
        written finish their write (at most :data:`SETTLE_SECONDS`), so that one fsync covers them too.
        """
        ino = os.fstat(fd).st_ino
        try:
            sfd = os.open(self._sync_file(), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if is_disk_full(exc):  # no inode for the sidecar: fsync alone still makes the line durable
                self._fsync(fd, end)
                return
            raise
        def covered() -> bool:  # read under the sidecar's lock (shared or exclusive): never torn
            raw = os.pread(sfd, _SYNC.size, 0)
            if len(raw) != _SYNC.size:
                return False
            synced_ino, synced = _SYNC.unpack(raw)
            return bool(synced_ino == ino and synced >= end)

        try:
            # Wait with a *shared* lock while another writer fsyncs (it holds the lock exclusively):
            # when it is done, every waiter it covered sees so at once and returns, instead of
            # taking the exclusive lock one after another. Only a writer not yet covered takes
            # the exclusive lock to fsync (without blocking while others merely look, a few times).
            for attempt in range(_COMMIT_TRIES + 1):
                fcntl.flock(sfd, fcntl.LOCK_SH)
                if covered():
                    return  # a writer before us fsynced past our line
                fcntl.flock(sfd, fcntl.LOCK_UN)
                if attempt == _COMMIT_TRIES:
                    fcntl.flock(sfd, fcntl.LOCK_EX)
                    break
                try:
                    fcntl.flock(sfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    continue
            if covered():
                return
            if settle:
                with self._turn:
                    self._turn.wait_for(lambda: not self._waiting and not self._leading, timeout=SETTLE_SECONDS)
            size = os.fstat(fd).st_size
            self._fsync(fd, end)
            if self.head_signer is not None:
                self._write_head(fd, size)
            try:
                os.pwrite(sfd, _SYNC.pack(ino, size), 0)
            except OSError as exc:
                if not is_disk_full(exc):
                    raise  # on a full disk the hint is lost: the next writer just fsyncs again
        finally:
            os.close(sfd)  # closing releases the flock

    def _sync_file(self) -> str:
        """``sync_path(self.path)``, computed once per path (a ``Path`` costs more than the lock it names)."""
        cached = self._sync_cache
        if cached is None or cached[0] is not self.path:
            cached = self._sync_cache = (self.path, str(sync_path(self.path)))
        return cached[1]

    def _fsync(self, fd: int, end: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull(self.path, None, code=exc.errno or errno.ENOSPC) from exc
            raise

    def _write_head(self, fd: int, size: int) -> None:
        assert self.head_signer is not None
        record = json.loads(_last_line(fd, size))
        head = {"log": self.path.name, "count": int(record["seq"]) + 1, "last_seq": int(record["seq"]),
                "last_digest": str(record["digest"]), "size": size}
        document = self.head_signer(head)
        if document is None:
            return
        target = head_path(self.path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:  # rename without fsync: after a power loss the head may lag (a note), never run ahead
            tmp.write_bytes(json.dumps(document, indent=2).encode() + b"\n")
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not is_disk_full(exc):
                raise
            # the lines are durable; the head lags until the next commit (verify notes the lag)

    def _tail(self, fd: int) -> tuple[int, str, int]:
        """Next sequence number, last digest and the size to append at, under the append lock.

        A torn last line (a writer killed mid-write, so no newline) was never acknowledged;
        it is cut off here before the next record is appended.
        """
        st = os.fstat(fd)
        size = st.st_size
        with self._cache_lock:
            cached = self._tail_cache
        if cached is not None and cached[0] == st.st_ino and cached[1] == size:
            return cached[2], cached[3], size
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
            return 0, GENESIS, 0
        record = json.loads(_last_line(fd, size))
        return int(record["seq"]) + 1, str(record["digest"]), size

    # -- reading ---------------------------------------------------------------------------
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


def read_head(log: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The stored head document of ``log`` (as written by its head signer), or ``None``."""
    try:
        data = json.loads(head_path(log).read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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
