"""Appending a signed provenance record to its fork's chain, safely under concurrency.

Why a module of its own: each record names the digest of the fork's previous record, so
"read the head, sign, write the record, move the head" must happen as one step even when
several steps of a fork finish at once (threads or processes). It runs under an exclusive
``flock`` on ``fork_<id>/.provenance.lock``; the head (digest + path of the newest record)
lives in ``fork_<id>/provenance.head`` and is rewritten atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conductor.provenance.keys import ProjectKey
from conductor.provenance.signing import record_digest, sign_record
from conductor.storage.atomic import atomic_write_json

HEAD_FILE = "provenance.head"
LOCK_FILE = ".provenance.lock"


def chain_head(fork_dir: Path) -> dict[str, Any] | None:
    """``{"digest", "path", "task_id", "count"}`` of the fork's newest record, or ``None``."""
    try:
        data = json.loads((fork_dir / HEAD_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def append_record(fork_dir: Path, target: Path, record: dict[str, Any], key: ProjectKey,
                  before_write: Callable[[str | None], None] | None = None) -> tuple[dict[str, Any], str]:
    """Link ``record`` to the fork's head, sign it, write it to ``target``; returns (record, digest).

    ``before_write(previous_digest)`` runs under the lock, before the file is written.
    """
    fork_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(fork_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        head = chain_head(fork_dir)
        previous = head["digest"] if head else None
        if before_write is not None:
            before_write(previous)
        signed = sign_record({**record, "previous_digest": previous}, key)
        digest = record_digest(signed)
        atomic_write_json(target, signed)
        atomic_write_json(fork_dir / HEAD_FILE, {
            "digest": digest,
            "path": target.relative_to(fork_dir).as_posix(),
            "task_id": record.get("task_id"),
            "count": (int(head.get("count", 0)) if head else 0) + 1,
        })
        return signed, digest
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
