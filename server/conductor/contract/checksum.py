"""Canonical JSON and the checksums computed over it.

A task's ``checksum`` is the SHA-256 of the canonical JSON of the task without its
``checksum`` field: keys sorted, no insignificant whitespace, UTF-8, non-ASCII kept as is.
Agents and Conductor compute it the same way, so any edit after writing is detectable.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

CHECKSUM_PREFIX = "sha256:"


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` deterministically (sorted keys, compact separators, UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def task_checksum(task: dict[str, Any]) -> str:
    """The checksum a task document must carry: ``sha256:`` + hex over its canonical content."""
    body = {k: v for k, v in task.items() if k != "checksum"}
    return CHECKSUM_PREFIX + sha256_hex(canonical_json(body))
