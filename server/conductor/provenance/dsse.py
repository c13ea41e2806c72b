"""DSSE envelopes (Dead Simple Signing Envelope, the in-toto / Sigstore signature wrapper).

Why a module of its own: every signed thing Conductor writes — a step's provenance (an
in-toto Statement), a log's signed head, a key rotation — is a DSSE envelope, so any DSSE
implementation (``securesystemslib``, ``in-toto``, ``sigstore``, Go's ``go-securesystemslib``)
checks it without our code::

    {"payloadType": "application/vnd.in-toto+json",
     "payload": "<base64 of the payload bytes>",
     "signatures": [{"keyid": "<sha256 of the raw Ed25519 public key, hex>", "sig": "<base64>"}]}

The signature is Ed25519 over PAE(payloadType, payload) =
``"DSSEv1" SP len(type) SP type SP len(payload) SP payload`` (lengths in ASCII decimal).
Envelopes carry no public key: a signature counts only when its key id is one the caller
trusts (the keys pinned in ``.conductor/trust.json``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conductor.provenance.keys import ProjectKey

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class EnvelopeError(ValueError):
    """An envelope that is malformed, unsigned, signed by an untrusted key, or altered."""

    def __init__(self, message: str, *, key_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.key_ids = key_ids


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is really signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def payload_bytes(value: Any) -> bytes:
    """The serialization used for every JSON payload: sorted keys, compact, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_envelope(payload: bytes, payload_type: str, key: ProjectKey) -> dict[str, Any]:
    """An envelope around ``payload`` with one Ed25519 signature by ``key``."""
    sig = key.private.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(sig).decode("ascii")}],
    }


def signer_key_ids(envelope: Mapping[str, Any]) -> tuple[str, ...]:
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list):
        return ()
    return tuple(str(s.get("keyid")) for s in sigs if isinstance(s, dict))


def open_envelope(envelope: Any, trusted: Mapping[str, bytes], payload_type: str | None = None) -> bytes:
    """The payload bytes, once one signature by a ``trusted`` key (key id → raw public key) verifies.

    Raises :class:`EnvelopeError` saying why not: malformed, wrong payload type, no signature,
    signed only by keys that are not trusted, or a signature that does not match (altered).
    """
    if not isinstance(envelope, Mapping):
        raise EnvelopeError("not a DSSE envelope (a JSON object with payloadType, payload, signatures)")
    kind = envelope.get("payloadType")
    if not isinstance(kind, str) or not isinstance(envelope.get("payload"), str):
        raise EnvelopeError("not a DSSE envelope: payloadType and payload must be strings")
    if payload_type is not None and kind != payload_type:
        raise EnvelopeError(f"payloadType is {kind!r}, expected {payload_type!r}")
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
    except (ValueError, binascii.Error):
        raise EnvelopeError("payload is not valid base64") from None
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise EnvelopeError("the envelope is not signed")
    message = pae(kind, payload)
    untrusted: list[str] = []
    for sig in sigs:
        if not isinstance(sig, Mapping):
            continue
        key_id = str(sig.get("keyid", ""))
        public = trusted.get(key_id)
        if public is None:
            untrusted.append(key_id)
            continue
        try:
            value = base64.b64decode(str(sig.get("sig", "")), validate=True)
            Ed25519PublicKey.from_public_bytes(public).verify(value, message)
        except (ValueError, binascii.Error, InvalidSignature):
            raise EnvelopeError(f"signature by key {key_id[:16]}… does not match: the envelope was altered "
                                "after signing", key_ids=(key_id,)) from None
        return payload
    raise EnvelopeError(
        "signed only by key(s) " + ", ".join(k[:16] + "…" for k in untrusted)
        + " that .conductor/trust.json does not pin (replaced key, or records re-signed with a foreign key)",
        key_ids=tuple(untrusted))


def open_json(envelope: Any, trusted: Mapping[str, bytes], payload_type: str | None = None) -> dict[str, Any]:
    """Like :func:`open_envelope`, for a payload that must be a JSON object."""
    payload = open_envelope(envelope, trusted, payload_type)
    try:
        value = json.loads(payload)
    except ValueError:
        raise EnvelopeError("the signed payload is not JSON") from None
    if not isinstance(value, dict):
        raise EnvelopeError("the signed payload is not a JSON object")
    return value


def peek_json(envelope: Any) -> dict[str, Any] | None:
    """The payload as JSON *without checking any signature* (for display only), or ``None``."""
    if not isinstance(envelope, Mapping) or not isinstance(envelope.get("payload"), str):
        return None
    try:
        value = json.loads(base64.b64decode(envelope["payload"], validate=True))
    except (ValueError, binascii.Error):
        return None
    return value if isinstance(value, dict) else None
