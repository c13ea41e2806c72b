"""The project's Ed25519 signing key in ``.conductor/keys/``, created on first use.

Why a module of its own: key creation must be safe when several processes start at once
(the first writer wins, everyone else reads the winner's key) and must never leave a key
readable by others. The folder is created 0700, the private key 0600 (PKCS#8 PEM), the
public key beside it (raw, base64) so records can be checked without the private key.
The private key is written to a temporary file and published with ``os.link``, which fails
when the target exists: two racing creators can never both "win".

The key is pinned in ``.conductor/trust.json`` (``provenance.trust``) when it is created;
after that, a missing key is not silently replaced and a key that is not pinned is refused
(:class:`~conductor.provenance.trust.TrustError`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PRIVATE_KEY_FILE = "provenance.ed25519.pem"
PUBLIC_KEY_FILE = "provenance.ed25519.pub"


def raw_public_bytes(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()


@dataclass(frozen=True)
class ProjectKey:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def public_raw(self) -> bytes:
        return raw_public_bytes(self.public)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode("ascii")

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_raw)


def _ensure_dir(keys_dir: Path) -> None:
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(keys_dir, 0o700)  # mkdir's mode is filtered by the umask


def _publish(path: Path, data: bytes, mode: int) -> bool:
    """Write ``data`` to ``path`` only if it does not exist yet; ``False`` when someone else won."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def load_private_key(private_path: Path) -> ProjectKey:
    loaded = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{private_path} is not an Ed25519 private key")
    return ProjectKey(loaded)


def load_or_create_key(keys_dir: Path) -> ProjectKey:
    """The project key, created (0600, in a 0700 folder) and pinned if there is none yet.

    Raises ``TrustError`` when ``trust.json`` pins a key and the one in ``keys_dir`` is missing
    or another.
    """
    from conductor.provenance.trust import check_missing, pin_if_unpinned  # lazy: trust imports this module

    private_path = keys_dir / PRIVATE_KEY_FILE
    if not private_path.exists():
        check_missing(keys_dir)
        _ensure_dir(keys_dir)
        candidate = Ed25519PrivateKey.generate()
        pem = candidate.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _publish(private_path, pem, 0o600)
    key = load_private_key(private_path)
    public_path = keys_dir / PUBLIC_KEY_FILE
    if not public_path.exists():
        _publish(public_path, (key.public_b64 + "\n").encode("ascii"), 0o644)
    pin_if_unpinned(keys_dir, key)
    return key


def load_public_key(keys_dir: Path) -> bytes | None:
    """The project's raw public key (from the public file, else from the private key), or ``None``."""
    public_path = keys_dir / PUBLIC_KEY_FILE
    if public_path.exists():
        try:
            return base64.b64decode(public_path.read_text(encoding="ascii").strip(), validate=True)
        except (ValueError, UnicodeDecodeError):
            return None
    private_path = keys_dir / PRIVATE_KEY_FILE
    if private_path.exists():
        loaded = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        if isinstance(loaded, Ed25519PrivateKey):
            return raw_public_bytes(loaded.public_key())
    return None
