"""The project key: created once, private, the same for racing processes."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conductor.provenance.keys import PRIVATE_KEY_FILE, load_or_create_key, load_public_key
from conductor.provenance.signing import record_digest, sign_record, verify_signature

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


def test_signature_detects_edits_and_foreign_keys(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "a")
    other = load_or_create_key(tmp_path / "b")
    record = sign_record({"task_id": "step_001", "verdict": "pass"}, key)
    assert verify_signature(record, key.public_raw) is None
    assert "edited" in (verify_signature({**record, "verdict": "fail"}, key.public_raw) or "")
    assert "not the project's key" in (verify_signature(sign_record(record, other), key.public_raw) or "")
    assert record_digest(record) != record_digest(sign_record(record, other))
