"""Signing one step's provenance and computing the digest that chains records.

Why a module of its own: the exact bytes that are signed and hashed are part of the
contract. A record is an in-toto Statement v1 (``contract.provenance.statement_of``)
serialized as JSON with sorted keys and compact separators, wrapped in a DSSE envelope
signed with the project's Ed25519 key (``provenance.dsse``). The chain digest of a record is
the SHA-256 of its envelope's JSON with sorted keys and compact separators (the envelope
holds only ASCII strings, so every JSON library produces the same bytes): the next record
commits to the previous one's signature too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from conductor.contract.provenance import PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, statement_of
from conductor.provenance.dsse import EnvelopeError, open_json, payload_bytes, sign_envelope
from conductor.provenance.keys import ProjectKey


def record_digest(envelope: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the envelope's canonical JSON (signatures included)."""
    raw = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()


def sign_predicate(predicate: dict[str, Any], key: ProjectKey) -> dict[str, Any]:
    """The DSSE envelope of the in-toto Statement whose predicate is ``predicate``."""
    return sign_envelope(payload_bytes(statement_of(predicate)), PAYLOAD_TYPE, key)


def open_statement(envelope: Any, trusted: Mapping[str, bytes]) -> dict[str, Any]:
    """The verified Statement of a provenance envelope; :class:`EnvelopeError` says why not."""
    statement = open_json(envelope, trusted, PAYLOAD_TYPE)
    if statement.get("_type") != STATEMENT_TYPE:
        raise EnvelopeError(f"payload is not an in-toto Statement v1 (_type {statement.get('_type')!r})")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise EnvelopeError(f"predicateType is {statement.get('predicateType')!r}, expected {PREDICATE_TYPE}")
    if not isinstance(statement.get("predicate"), dict):
        raise EnvelopeError("the Statement has no predicate object")
    return statement
