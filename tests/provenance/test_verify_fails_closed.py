"""`conductor verify` fails closed: after a real build, each way of forging or hiding the record —
deleting the key, replacing it, re-signing with a foreign key, cutting the tail off an audit log or
a journal, removing the pin or a signed head — makes verify (a real subprocess) exit 1 and name the
file and line."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conductor.project.layout import ProjectLayout
from conductor.provenance.dsse import sign_envelope
from conductor.provenance.keys import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, ProjectKey
from conductor.provenance.trust import rotate_key
from tests.provenance.conftest import verify

LOCATED = re.compile(r"^BROKEN (\S+):(\d+)", re.M)


def problems(out: str) -> list[tuple[str, int]]:
    return [(f, int(n)) for f, n in LOCATED.findall(out)]


def only_fork(root: Path) -> Path:
    (fork,) = (root / ".conductor" / "handoff").glob("plan_*/fork_main")
    return fork


def only_journal(root: Path) -> Path:
    (journal,) = (root / ".conductor" / "plans").glob("*/journal.jsonl")
    return journal


def test_the_untouched_build_verifies(built_project: Path) -> None:
    out = verify(built_project)
    assert out.returncode == 0, out.stdout
    assert "OK:" in out.stdout


def test_deleted_keys_are_named(built_project: Path) -> None:
    trust = built_project / ".conductor" / "trust.json"
    key_id = json.loads(trust.read_text())["keys"][0]["key_id"]
    line = next(i for i, text in enumerate(trust.read_text().splitlines(), 1) if key_id in text)
    for path in (built_project / ".conductor" / "keys").iterdir():
        path.unlink()
    (built_project / ".conductor" / "keys").rmdir()
    out = verify(built_project)
    assert out.returncode == 1
    assert (".conductor/trust.json", line) in problems(out.stdout), out.stdout
    assert ".conductor/keys/ is missing" in out.stdout


def test_a_replaced_key_is_named(built_project: Path) -> None:
    keys = built_project / ".conductor" / "keys"
    foreign = ProjectKey(Ed25519PrivateKey.generate())
    (keys / PRIVATE_KEY_FILE).write_bytes(foreign.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (keys / PUBLIC_KEY_FILE).write_text(foreign.public_b64 + "\n")
    out = verify(built_project)
    assert out.returncode == 1
    assert (".conductor/keys/provenance.ed25519.pub", 1) in problems(out.stdout), out.stdout
    assert "the project key was replaced" in out.stdout


def test_records_re_signed_with_a_foreign_key_are_named(built_project: Path) -> None:
    """The agent's own key signs every record, head and the key files: only the pin stands in the way."""
    foreign = ProjectKey(Ed25519PrivateKey.generate())
    conductor_dir = built_project / ".conductor"
    signed = ["*.provenance.json", "audit.log.head", "journal.jsonl.head"]
    for path in [p for pattern in signed for p in conductor_dir.rglob(pattern)]:
        envelope = json.loads(path.read_text())
        resigned = sign_envelope(base64.b64decode(envelope["payload"]), envelope["payloadType"], foreign)
        path.write_text(json.dumps(resigned, indent=2))
    keys = conductor_dir / "keys"
    (keys / PRIVATE_KEY_FILE).write_bytes(foreign.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (keys / PUBLIC_KEY_FILE).write_text(foreign.public_b64 + "\n")
    out = verify(built_project)
    assert out.returncode == 1
    located = problems(out.stdout)
    records = [f for f, _ in located if f.endswith(".provenance.json")]
    assert len(records) >= 3, out.stdout  # every record is named
    assert "does not pin" in out.stdout and foreign.key_id[:16] in out.stdout
    assert any(f.endswith("audit.log.head") for f, _ in located), out.stdout
    assert any(f.endswith("journal.jsonl.head") for f, _ in located), out.stdout


def test_deleting_the_last_audit_line_is_named(built_project: Path) -> None:
    audit = only_fork(built_project) / "audit.log"
    lines = audit.read_bytes().splitlines(keepends=True)
    assert json.loads(lines[-1])["event"] == "step.completed"
    audit.write_bytes(b"".join(lines[:-1]))
    out = verify(built_project)
    assert out.returncode == 1
    rel = audit.relative_to(built_project).as_posix()
    assert (rel, len(lines)) in problems(out.stdout), out.stdout
    assert "truncated" in out.stdout and "1 line(s) were cut off" in out.stdout


def test_deleting_the_last_ten_journal_lines_is_named(built_project: Path) -> None:
    journal = only_journal(built_project)
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) > 10
    journal.write_bytes(b"".join(lines[:-10]))
    out = verify(built_project)
    assert out.returncode == 1
    rel = journal.relative_to(built_project).as_posix()
    assert (rel, len(lines) - 9) in problems(out.stdout), out.stdout
    assert "10 line(s) were cut off" in out.stdout


def test_a_deleted_signed_head_or_pin_is_named(built_project: Path) -> None:
    (only_fork(built_project) / "audit.log.head").unlink()
    (built_project / ".conductor" / "trust.json").unlink()
    out = verify(built_project)
    assert out.returncode == 1
    assert "audit.log.head" in out.stdout and "cutting lines off its end cannot be ruled out" in out.stdout
    assert ".conductor/trust.json" in out.stdout and "not pinned" in out.stdout


def test_a_signed_rotation_keeps_verifying_and_an_unsigned_one_does_not(built_project: Path) -> None:
    layout = ProjectLayout.at(built_project)
    old = json.loads(layout.trust_file.read_text())["keys"][0]["key_id"]
    rotated = rotate_key(layout)
    assert rotated["old_key_id"] == old
    out = verify(built_project)
    assert out.returncode == 0, out.stdout  # records signed before the rotation stay valid
    trust = json.loads(layout.trust_file.read_text())
    assert [k["added_by"] for k in trust["keys"]] == ["created", "rotation"]
    # A key slipped into trust.json without a rotation signed by a trusted key is not trusted.
    foreign = ProjectKey(Ed25519PrivateKey.generate())
    trust["keys"].append({"key_id": foreign.key_id, "algorithm": "ed25519", "public_key": foreign.public_b64,
                          "added_at": "now", "added_by": "rotation"})
    layout.trust_file.write_text(json.dumps(trust, indent=2))
    out = verify(built_project)
    assert out.returncode == 1
    assert any(f == ".conductor/trust.json" for f, _ in problems(out.stdout)), out.stdout
    assert "neither the first" in out.stdout


def test_conductor_keys_rotate_keeps_everything_verifying_and_refuses_without_the_old_key(
        built_project: Path) -> None:
    from tests.engine.support import conductor, conductor_env

    env = conductor_env(None, key=None)
    old = json.loads((built_project / ".conductor" / "trust.json").read_text())["keys"][0]["key_id"]
    done = conductor("keys", "rotate", "--json", cwd=built_project, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    rotated = json.loads(done.stdout)
    assert rotated["old_key_id"] == old and rotated["new_key_id"] != old
    assert rotated["trust_file"] == ".conductor/trust.json"
    assert (built_project / ".conductor" / "keys" / "retired" / f"{old}.pem").exists()
    assert verify(built_project).returncode == 0
    # Without the private key there is nothing to sign the rotation with: one line, exit 3, trust.json untouched.
    before = (built_project / ".conductor" / "trust.json").read_bytes()
    (built_project / ".conductor" / "keys" / PRIVATE_KEY_FILE).unlink()
    refused = conductor("keys", "rotate", cwd=built_project, env=env)
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stdout + refused.stderr
    assert "restore .conductor/keys/" in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
    assert (built_project / ".conductor" / "trust.json").read_bytes() == before


def test_a_fresh_clone_adds_its_own_key_trusted_once_committed(built_project: Path, tmp_path: Path) -> None:
    """A teammate's clone has trust.json but no keys/ (never committed): `conductor keys add` gives it one,
    which `verify` trusts only once the trust.json that lists it is committed."""
    import subprocess

    from tests.engine.support import conductor, conductor_env

    env = conductor_env(None, key=None)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(built_project), str(clone)], check=True)
    assert (clone / ".conductor" / "trust.json").exists() and not (clone / ".conductor" / "keys").exists()
    stuck = conductor("build", "anything", cwd=clone, env=env)
    assert stuck.returncode == 3 and "conductor keys add" in stuck.stderr, stuck.stdout + stuck.stderr

    added = conductor("keys", "add", "--name", "bob", "--json", cwd=clone, env=env)
    assert added.returncode == 0, added.stdout + added.stderr
    key_id = json.loads(added.stdout)["key_id"]
    entry = json.loads((clone / ".conductor" / "trust.json").read_text())["keys"][-1]
    assert entry["key_id"] == key_id and entry["added_by"] == "member" and entry["name"] == "bob"
    assert (clone / ".conductor" / "keys" / PRIVATE_KEY_FILE).stat().st_mode & 0o077 == 0

    unreviewed = verify(clone)
    assert unreviewed.returncode == 1 and "(bob) is not in the committed trust.json" in unreviewed.stdout
    assert any(f == ".conductor/trust.json" for f, _ in problems(unreviewed.stdout)), unreviewed.stdout
    subprocess.run(["git", "-C", str(clone), "-c", "user.name=bob", "-c", "user.email=bob@example.invalid",
                    "commit", "-qm", "Bob's signing key", ".conductor/trust.json"], check=True)
    assert verify(clone).returncode == 0

    again = conductor("keys", "add", cwd=clone, env=env)
    assert again.returncode == 3 and "has a signing key already" in again.stderr
