"""The project key: created once, private, the same for racing processes."""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conductor.provenance.dsse import EnvelopeError
from conductor.provenance.keys import PRIVATE_KEY_FILE, load_or_create_key, load_public_key
from conductor.provenance.signing import open_statement, record_digest, sign_predicate
from conductor.provenance.trust import TrustError

RACE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from conductor.provenance.keys import load_or_create_key
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    print(load_or_create_key(Path(sys.argv[1])).key_id)
""")


def test_key_is_private_and_stable(tmp_path: Path) -> None:
    keys = tmp_path / ".conductor" / "keys"
    key = load_or_create_key(keys)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE((keys / PRIVATE_KEY_FILE).stat().st_mode) == 0o600
    assert load_or_create_key(keys).key_id == key.key_id
    assert load_public_key(keys) == key.public_raw


def test_racing_processes_agree_on_one_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    start = str(time.time() + 1.0)
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(keys), start], stdout=subprocess.PIPE, text=True)
             for _ in range(8)]
    ids = {p.communicate(timeout=30)[0].strip() for p in procs}
    assert len(ids) == 1 and ids != {""}
    assert [p.name for p in keys.iterdir() if not p.name.startswith(".")] != []
    assert not [p for p in keys.iterdir() if p.name.startswith(".")]  # no temp files left


def test_envelope_opens_only_with_a_trusted_key_and_unaltered(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "a" / "keys")
    other = load_or_create_key(tmp_path / "b" / "keys")
    predicate = {"task_id": "step_001", "verdict": "pass", "task_digest": "ab" * 32, "products": []}
    envelope = sign_predicate(predicate, key)
    trusted = {key.key_id: key.public_raw}
    assert open_statement(envelope, trusted)["predicate"] == predicate
    with pytest.raises(EnvelopeError, match="does not pin"):
        open_statement(sign_predicate(predicate, other), trusted)
    altered = {**envelope, "payload": base64.b64encode(base64.b64decode(envelope["payload"]).replace(
        b'"pass"', b'"fail"')).decode()}
    with pytest.raises(EnvelopeError, match="altered"):
        open_statement(altered, trusted)
    assert record_digest(envelope) != record_digest(sign_predicate(predicate, other))


def test_a_pinned_key_is_never_silently_replaced(tmp_path: Path) -> None:
    keys = tmp_path / ".conductor" / "keys"
    key = load_or_create_key(keys)
    assert key.key_id in (keys.parent / "trust.json").read_text()
    (keys / PRIVATE_KEY_FILE).unlink()
    with pytest.raises(TrustError, match="is missing"):
        load_or_create_key(keys)  # no new key behind the pin's back
    other = load_or_create_key(tmp_path / "elsewhere" / "keys")
    shutil.copy(tmp_path / "elsewhere" / "keys" / PRIVATE_KEY_FILE, keys / PRIVATE_KEY_FILE)
    with pytest.raises(TrustError, match=f"holds key {other.key_id[:16]}"):
        load_or_create_key(keys)
