"""Signing one provenance record and computing the digest that links records into a chain.

Why a module of its own: the exact bytes that are signed and hashed are part of the
contract. The signature covers the canonical JSON (``conductor.contract.canonical_json``)
of the record without its ``signature`` field; the chain digest is the SHA-256 of the
canonical JSON of the whole record, signature included, so the next record commits to
the previous one's signature too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conductor.contract.checksum import canonical_json, sha256_hex
from conductor.provenance.keys import ProjectKey, key_id_of


def signed_bytes(record: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in record.items() if k != "signature"})


def record_digest(record: dict[str, Any]) -> str:
    """Hex SHA-256 of the record's canonical JSON, signature included."""
    return sha256_hex(canonical_json(record))


def sign_record(record: dict[str, Any], key: ProjectKey) -> dict[str, Any]:
    """A copy of ``record`` with an Ed25519 ``signature`` block."""
    value = key.private.sign(signed_bytes(record))
    return {
        **{k: v for k, v in record.items() if k != "signature"},
        "signature": {
            "algorithm": "ed25519",
            "key_id": key.key_id,
            "public_key": key.public_b64,
            "value": base64.b64encode(value).decode("ascii"),
        },
    }


def verify_signature(record: dict[str, Any], trusted_public: bytes | None) -> str | None:
    """``None`` when the signature is valid (and by the trusted key, if given); else why not."""
    sig = record.get("signature")
    if not isinstance(sig, dict):
        return "record is not signed"
    if sig.get("algorithm") != "ed25519":
        return f"unsupported signature algorithm {sig.get('algorithm')!r}"
    try:
        public_raw = base64.b64decode(str(sig.get("public_key", "")), validate=True)
        value = base64.b64decode(str(sig.get("value", "")), validate=True)
        public = Ed25519PublicKey.from_public_bytes(public_raw)
    except (ValueError, binascii.Error):
        return "signature block is malformed"
    if sig.get("key_id") != key_id_of(public_raw):
        return "signature key_id does not match its public key"
    if trusted_public is not None and public_raw != trusted_public:
        return "signed by a key that is not the project's key"
    try:
        public.verify(value, signed_bytes(record))
    except InvalidSignature:
        return "signature does not match the record: it was edited after signing"
    return None
