"""Appending a signed provenance record to its fork's chain, safely under concurrency and crashes.

A record is a DSSE envelope around an in-toto Statement (``provenance.signing``); its
predicate names the digest of the fork's previous envelope.

Why a module of its own: each record names the digest of the fork's previous record, so
"read the head, sign, write the record, move the head" must happen as one step even when
several steps of a fork finish at once (threads or processes), and must survive the process
being killed at any point. It runs under an exclusive ``flock`` on
``fork_<id>/.provenance.lock``; the head (digest + path of the newest record) lives in
``fork_<id>/provenance.head`` and is rewritten atomically.

Crash safety: before the record is written, its digest and path go to
``fork_<id>/provenance.next`` (an intent). If the process dies after writing the record but
before moving the head, the intent still names the newest record: :func:`chain_head` reads
it (finding the record even if it was since moved to ``attempts/``), so the next record links
to it and the chain never forks or restarts. A stale intent whose record was never written
is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conductor import secrets
from conductor.provenance.keys import ProjectKey
from conductor.provenance.signing import record_digest, sign_predicate
from conductor.storage.atomic import atomic_write_json
from conductor.storage.regular import Unreadable, read_regular

HEAD_FILE = "provenance.head"
INTENT_FILE = "provenance.next"
LOCK_FILE = ".provenance.lock"
RECORD_LIMIT = 16 << 20


def _read_json(path: Path) -> dict[str, Any] | None:
    try:  # these files live where agents write: only a regular file is read (never a FIFO or a symlink)
        data = json.loads(read_regular(path, RECORD_LIMIT))
    except (FileNotFoundError, Unreadable, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _record_digest_at(path: Path) -> str | None:
    try:
        record = json.loads(read_regular(path, RECORD_LIMIT))
    except (FileNotFoundError, Unreadable, ValueError):
        return None
    return record_digest(record) if isinstance(record, dict) else None


def _find_record(fork_dir: Path, digest: str) -> Path | None:
    for state in ("completed", "failed"):
        base = fork_dir / state
        if base.is_dir():
            for path in base.rglob("*.provenance.json"):
                if _record_digest_at(path) == digest:
                    return path
    return None


def chain_head(fork_dir: Path) -> dict[str, Any] | None:
    """``{"digest", "path", "task_id", "count"}`` of the fork's newest record, or ``None``.

    A completed intent (its record exists) wins over the head file: the writer died between
    writing the record and moving the head.
    """
    intent = _read_json(fork_dir / INTENT_FILE)
    if intent is not None and isinstance(intent.get("digest"), str):
        path = fork_dir / str(intent.get("path", ""))
        found = path if _record_digest_at(path) == intent["digest"] else _find_record(fork_dir, intent["digest"])
        if found is not None:
            return {**intent, "path": found.relative_to(fork_dir).as_posix()}
    return _read_json(fork_dir / HEAD_FILE)


def append_record(fork_dir: Path, target: Path, record: dict[str, Any], key: ProjectKey,
                  before_write: Callable[[str | None], None] | None = None) -> tuple[dict[str, Any], str]:
    """Link the predicate ``record`` to the fork's head, sign it, write the envelope to ``target``.

    Returns ``(predicate, digest)``: the predicate as signed (``previous_digest`` filled in)
    and the digest of the envelope written. ``before_write(previous_digest)`` runs under the
    lock, before the file is written.
    """
    fork_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(fork_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        head = chain_head(fork_dir)
        previous = head["digest"] if head else None
        if before_write is not None:
            before_write(previous)
        predicate = secrets.redact({k: v for k, v in record.items() if k != "signature"})  # no key is ever signed
        predicate["previous_digest"] = previous
        envelope = sign_predicate(predicate, key)
        digest = record_digest(envelope)
        new_head = {
            "digest": digest,
            "path": target.relative_to(fork_dir).as_posix(),
            "task_id": record.get("task_id"),
            "count": (int(head.get("count", 0)) if head else 0) + 1,
        }
        atomic_write_json(fork_dir / INTENT_FILE, new_head)
        atomic_write_json(target, envelope)
        atomic_write_json(fork_dir / HEAD_FILE, new_head)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(fork_dir / INTENT_FILE)
        return predicate, digest
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
