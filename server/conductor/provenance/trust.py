"""The pinned project key: ``.conductor/trust.json``, committed and reviewed like code.

Why a module of its own: a signature proves nothing if whoever can write the records can
also swap the key that checks them. ``trust.json`` names the project's public key(s) by
fingerprint; it is written when the key is first created (``conductor init`` or the first
signature) and then only changes by an explicit rotation, so a replaced key shows up as a
diff in review. ``conductor verify`` accepts only signatures by a key trusted here::

    {"version": 1,
     "keys": [{"key_id": "<sha256 of the raw public key>", "algorithm": "ed25519",
               "public_key": "<raw public key, base64>", "added_at": "…", "added_by": "created"},
              {… "added_by": "rotation"}],
     "rotations": [<DSSE envelope, payload type application/vnd.conductor.key-rotation+json,
                    signed by the old key: {"old_key_id", "new_key_id", "new_public_key", "rotated_at"}>]}

The first key (``added_by: created``) is the root. Any other key is trusted only when a
rotation envelope signed by an already trusted key introduces it, or when it is a team
member's key (``added_by: member``, written by ``conductor keys add`` on a fresh clone, whose
``keys/`` folder is never committed) **and** that entry is in the committed ``trust.json``
(``HEAD``): a member key counts once a person committed it, i.e. once it could be reviewed.
A key that was rotated out stays trusted for the records it signed before.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conductor.project.layout import TRUST_FILE, ProjectLayout
from conductor.provenance.dsse import EnvelopeError, open_json, payload_bytes, sign_envelope
from conductor.provenance.keys import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    ProjectKey,
    key_id_of,
    load_or_create_key,
    load_private_key,
)
from conductor.storage.atomic import atomic_write_bytes

TRUST_VERSION = 1
ROTATION_PAYLOAD_TYPE = "application/vnd.conductor.key-rotation+json"
RETIRED_DIR = "retired"
MEMBER = "member"  # ``added_by`` of a team member's own key (``conductor keys add``)


class TrustError(RuntimeError):
    """The project key cannot be used: missing, not pinned, or ``trust.json`` is unreadable."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trust_file_for(keys_dir: Path) -> Path:
    """``trust.json`` beside a project's ``keys/`` folder."""
    return keys_dir.parent / TRUST_FILE


@dataclass
class Trust:
    """A parsed ``trust.json`` and what it makes trusted."""

    path: Path
    text: str
    data: dict[str, Any]
    trusted: dict[str, bytes] = field(default_factory=dict)  # key id → raw public key
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, message)
    successors: dict[str, list[str]] = field(default_factory=dict)  # old key id → keys rotated in from it
    unreviewed: set[str] = field(default_factory=set)  # member keys not in the committed trust.json

    def line_of(self, needle: str) -> int:
        at = self.text.find(needle) if needle else -1
        return self.text.count("\n", 0, at) + 1 if at >= 0 else 1

    @property
    def root(self) -> str | None:
        keys = self.data.get("keys") or []
        return str(keys[0].get("key_id")) if keys and isinstance(keys[0], dict) else None

    def descendants(self, key_id: str) -> set[str]:
        """``key_id`` and every key rotated in from it, directly or not."""
        seen = {key_id}
        todo = [key_id]
        while todo:
            for nxt in self.successors.get(todo.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen


def read_trust(path: Path, committed: set[str] | None = None) -> Trust | None:
    """The trust file at ``path`` (``None`` when absent); unreadable content is a :class:`TrustError`.

    ``committed`` is the set of member key ids in the committed ``trust.json`` (what ``verify``
    passes, see :func:`committed_members`); ``None`` trusts the local file's member keys (the
    engine signing with its own key).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustError(f"{path}: cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrustError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise TrustError(f"{path}:1: not a trust file (a JSON object with a non-empty `keys` list)")
    trust = Trust(path, text, data)
    declared: dict[str, bytes] = {}
    for entry in data["keys"]:
        if not isinstance(entry, dict):
            trust.problems.append((1, "a `keys` entry is not an object"))
            continue
        key_id = str(entry.get("key_id", ""))
        try:
            raw = base64.b64decode(str(entry.get("public_key", "")), validate=True)
        except (ValueError, binascii.Error):
            trust.problems.append((trust.line_of(key_id), f"key {key_id[:16]}…: public_key is not base64"))
            continue
        if len(raw) != 32 or key_id_of(raw) != key_id:
            trust.problems.append((trust.line_of(key_id),
                                   f"key {key_id[:16]}…: key_id is not the SHA-256 of its public_key"))
            continue
        declared[key_id] = raw
    root = trust.root
    if root in declared:
        trust.trusted[root] = declared[root]
    unreviewed = trust.unreviewed
    for entry in data["keys"][1:]:
        key_id = str(entry.get("key_id", "")) if isinstance(entry, dict) else ""
        if key_id not in declared or entry.get("added_by") != MEMBER:
            continue
        if committed is None or key_id in committed:
            trust.trusted[key_id] = declared[key_id]
        else:
            unreviewed.add(key_id)
            who = f" ({entry.get('name')})" if entry.get("name") else ""
            trust.problems.append((trust.line_of(key_id), f"member key {key_id[:16]}…{who} is not in the committed "
                                   f"{TRUST_FILE} (HEAD): commit it so the key is reviewed; until then nothing it "
                                   "signed is trusted"))
    rotations = data.get("rotations") or []
    progress = True
    pending = list(enumerate(rotations))
    while progress and pending:  # rotations may be listed in any order; apply each once its signer is trusted
        progress = False
        for index, envelope in list(pending):
            try:
                body = open_json(envelope, trust.trusted, ROTATION_PAYLOAD_TYPE)
            except EnvelopeError:
                continue
            pending.remove((index, envelope))
            progress = True
            new_id = str(body.get("new_key_id", ""))
            if declared.get(new_id) is None or base64.b64encode(declared[new_id]).decode() != body.get(
                    "new_public_key"):
                trust.problems.append((trust.line_of(new_id) if new_id else 1,
                                       f"rotation {index + 1} names key {new_id[:16]}… which `keys` does not list "
                                       "with the same public key"))
                continue
            trust.trusted[new_id] = declared[new_id]
            trust.successors.setdefault(str(body.get("old_key_id")), []).append(new_id)
    for index, envelope in pending:
        payload = envelope.get("payload", "") if isinstance(envelope, dict) else ""
        trust.problems.append((trust.line_of(str(payload)[:40]) if payload else 1,
                               f"rotation {index + 1} is not signed by a trusted key: ignored"))
    for key_id in declared:
        if key_id not in trust.trusted and key_id not in unreviewed:
            trust.problems.append((trust.line_of(key_id), f"key {key_id[:16]}… is listed but neither the first "
                                   "(created) key nor introduced by a rotation signed by a trusted key"))
    return trust


def _key_entry(key: ProjectKey, added_by: str, name: str | None = None) -> dict[str, Any]:
    entry = {"key_id": key.key_id, "algorithm": "ed25519", "public_key": key.public_b64, "added_at": _now(),
             "added_by": added_by}
    return {**entry, "name": name} if name else entry


def committed_members(layout: ProjectLayout) -> set[str]:
    """The member key ids of the ``trust.json`` committed at ``HEAD`` (none when there is no such commit)."""
    from conductor.git.command import GitError, run  # lazy: only `verify` asks

    try:
        done = run(layout.root, "show", f"HEAD:{layout.relative(layout.trust_file)}", check=False)
    except GitError:
        return set()
    if done.returncode != 0:
        return set()
    try:
        data = json.loads(done.stdout.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return set()
    keys = data.get("keys") if isinstance(data, dict) else None
    return {str(e.get("key_id")) for e in keys or [] if isinstance(e, dict) and e.get("added_by") == MEMBER}


def _render(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def pin_if_unpinned(keys_dir: Path, key: ProjectKey) -> None:
    """Write ``trust.json`` naming ``key`` if there is none; else check ``key`` is trusted there."""
    path = trust_file_for(keys_dir)
    if not path.exists():
        data = {"version": TRUST_VERSION,
                "comment": "The project's pinned signing key(s). Commit this file and review every change: "
                           "`conductor verify` accepts only signatures by these keys.",
                "keys": [_key_entry(key, "created")], "rotations": []}
        try:
            atomic_write_bytes(path, _render(data), exclusive=True)
        except FileExistsError:
            pass  # another process pinned first: check against its file below
        else:
            return
    trust = read_trust(path)
    if trust is not None and key.key_id not in trust.trusted:
        raise TrustError(
            f"{path}:{trust.line_of(trust.root or '')}: pins key {(trust.root or '?')[:16]}…, but "
            f"{keys_dir / PRIVATE_KEY_FILE} holds key {key.key_id[:16]}… (replaced?). Restore the pinned key, or "
            "rotate with `conductor keys rotate` while the pinned key is in place")


def check_missing(keys_dir: Path) -> None:
    """Refuse to create a new key when ``trust.json`` already pins one (it was deleted, not never made)."""
    trust = read_trust(trust_file_for(keys_dir))
    if trust is not None:
        raise TrustError(
            f"{trust.path}:{trust.line_of(trust.root or '')}: pins key {(trust.root or '?')[:16]}…, but "
            f"{keys_dir / PRIVATE_KEY_FILE} is missing: restore .conductor/keys/ from your backup, or, on a fresh "
            "clone, add your own key with `conductor keys add` and commit trust.json")


def trusted_keys(layout: ProjectLayout) -> Trust | None:
    return read_trust(layout.trust_file)


def project_key_fingerprint(layout: ProjectLayout) -> str:
    """The key id of the project key (created and pinned on first use): what a plan's journal pins."""
    return load_or_create_key(layout.keys_dir).key_id


def rotate_key(layout: ProjectLayout) -> dict[str, str]:
    """Replace the project key by a new one, introduced in ``trust.json`` by a rotation signed with the old.

    The old private key moves to ``keys/retired/<key id>.pem``; records it signed stay valid.
    """
    old = load_or_create_key(layout.keys_dir)
    trust = read_trust(layout.trust_file)
    if trust is None:  # load_or_create_key pins; a missing file here means it was removed meanwhile
        raise TrustError(f"{layout.trust_file}: missing")
    new = ProjectKey(Ed25519PrivateKey.generate())
    body = {"old_key_id": old.key_id, "new_key_id": new.key_id, "new_public_key": new.public_b64,
            "rotated_at": _now()}
    envelope = sign_envelope(payload_bytes(body), ROTATION_PAYLOAD_TYPE, old)
    data = dict(trust.data)
    data["keys"] = [*trust.data["keys"], _key_entry(new, "rotation")]
    data["rotations"] = [*(trust.data.get("rotations") or []), envelope]
    retired = layout.keys_dir / RETIRED_DIR
    retired.mkdir(mode=0o700, exist_ok=True)
    pem = old.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    atomic_write_bytes(retired / f"{old.key_id}.pem", pem, 0o600)
    atomic_write_bytes(layout.trust_file, _render(data))  # from here on the new key is trusted
    new_pem = new.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    atomic_write_bytes(layout.keys_dir / PRIVATE_KEY_FILE, new_pem, 0o600)
    atomic_write_bytes(layout.keys_dir / PUBLIC_KEY_FILE, (new.public_b64 + "\n").encode("ascii"), 0o644)
    assert load_private_key(layout.keys_dir / PRIVATE_KEY_FILE).key_id == new.key_id
    return {"old_key_id": old.key_id, "new_key_id": new.key_id, "trust_file": str(layout.trust_file)}


def add_member_key(layout: ProjectLayout, name: str) -> dict[str, str]:
    """A fresh clone's own signing key, listed in ``trust.json`` as a member key (trusted once committed)."""
    keys_dir = layout.keys_dir
    if (keys_dir / PRIVATE_KEY_FILE).exists():
        key = load_private_key(keys_dir / PRIVATE_KEY_FILE)
        raise TrustError(f"{keys_dir / PRIVATE_KEY_FILE}: this clone has a signing key already ({key.key_id[:16]}…); "
                         "`conductor keys rotate` replaces it")
    trust = read_trust(layout.trust_file)
    if trust is None:
        raise TrustError(f"{layout.trust_file}: missing; `conductor init` creates the project key and pins it")
    key = ProjectKey(Ed25519PrivateKey.generate())
    data = dict(trust.data)
    data["keys"] = [*trust.data["keys"], _key_entry(key, MEMBER, name)]
    _ensure_keys_dir(keys_dir)
    pem = key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    atomic_write_bytes(layout.trust_file, _render(data))
    atomic_write_bytes(keys_dir / PRIVATE_KEY_FILE, pem, 0o600)
    atomic_write_bytes(keys_dir / PUBLIC_KEY_FILE, (key.public_b64 + "\n").encode("ascii"), 0o644)
    return {"key_id": key.key_id, "name": name, "trust_file": layout.relative(layout.trust_file)}


def _ensure_keys_dir(keys_dir: Path) -> None:
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
