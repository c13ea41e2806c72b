"""Canonical JSON and the checksums computed over it.

A task's ``checksum`` is ``sha256:`` + the hex SHA-256 of the task without its ``checksum``
field, serialized by RFC 8785, the JSON Canonicalization Scheme (JCS): keys sorted by UTF-16
code units, no insignificant whitespace, numbers as ECMAScript prints them (``1.0`` is ``1``),
UTF-8. Every language has a JCS library (Python ``rfc8785``, JavaScript ``canonicalize``, Go
``github.com/cyberphone/json-canonicalization``, Rust ``serde_jcs``), so an agent written in
any of them computes the same bytes.

Contract 1.0 tasks used Python's ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``; they are still read, and their checksum is computed that way.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

CHECKSUM_PREFIX = "sha256:"
LEGACY_VERSION = "1.0"


def canonical_json(value: Any) -> bytes:
    """``value`` serialized by RFC 8785 (JCS)."""
    return rfc8785.dumps(value)


def legacy_canonical_json(value: Any) -> bytes:
    """Contract 1.0's canonical form (Python's sorted, compact ``json.dumps``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def task_checksum(task: dict[str, Any]) -> str:
    """The checksum a task document must carry: ``sha256:`` + hex over its canonical content."""
    body = {k: v for k, v in task.items() if k != "checksum"}
    if body.get("contract_version") == LEGACY_VERSION:
        return CHECKSUM_PREFIX + sha256_hex(legacy_canonical_json(body))
    return CHECKSUM_PREFIX + sha256_hex(canonical_json(body))
