"""A step's provenance from a real build is an in-toto Statement v1 in a DSSE envelope that an
independent implementation (securesystemslib's DSSE) verifies with the pinned project key — and
rejects once one byte of it is flipped."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey


def pinned_key(root: Path) -> SSlibKey:
    trust = json.loads((root / ".conductor" / "trust.json").read_text())
    (entry,) = trust["keys"]
    raw = base64.b64decode(entry["public_key"])
    return SSlibKey(entry["key_id"], "ed25519", "ed25519", {"public": raw.hex()})


def envelopes(root: Path) -> list[Path]:
    found = sorted((root / ".conductor" / "handoff").glob("plan_*/fork_main/completed/step_*.provenance.json"))
    assert found, "the build left no provenance"
    return found


def test_real_envelope_verifies_with_securesystemslib(built_project: Path) -> None:
    key = pinned_key(built_project)
    for path in envelopes(built_project):
        envelope = Envelope.from_dict(json.loads(path.read_text()))
        assert envelope.payload_type == "application/vnd.in-toto+json"
        assert list(envelope.verify([key], 1)) == [key.keyid]
        statement = json.loads(envelope.payload)
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        assert statement["predicateType"] == "https://conductor.dev/provenance/step/v1"
        predicate = statement["predicate"]
        assert predicate["verdict"] == "pass" and predicate["task_id"] == path.name.split(".")[0]
        # The subjects are the step's output files, with the sha256 of what is really in the checkout.
        for subject in statement["subject"]:
            if subject["name"].startswith(("task:", "git-commit")):
                continue
            content = (built_project / subject["name"]).read_bytes()
            assert subject["digest"] == {"sha256": hashlib.sha256(content).hexdigest()}


@pytest.mark.parametrize("where", ["payload", "sig"])
def test_a_flipped_byte_fails_independent_verification(built_project: Path, where: str) -> None:
    key = pinned_key(built_project)
    data = json.loads(envelopes(built_project)[-1].read_text())
    blob = bytearray(base64.b64decode(data["payload"] if where == "payload" else data["signatures"][0]["sig"]))
    blob[len(blob) // 2] ^= 0x01
    if where == "payload":
        data["payload"] = base64.b64encode(bytes(blob)).decode()
    else:
        data["signatures"][0]["sig"] = base64.b64encode(bytes(blob)).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(data).verify([key], 1)


def test_a_foreign_key_is_not_accepted_by_the_independent_verifier(built_project: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    foreign = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = pinned_key(built_project)
    impostor = SSlibKey(key.keyid, "ed25519", "ed25519", {"public": foreign.hex()})
    data = json.loads(envelopes(built_project)[0].read_text())
    with pytest.raises(VerificationError):
        Envelope.from_dict(data).verify([impostor], 1)
