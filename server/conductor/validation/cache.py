"""Diagnostics of documents already validated, keyed by a hash of everything that decides them.

``conductor validate`` of a long plan reads some two thousand task, result and provenance
files, nearly all unchanged since the last run (the policy and the configuration, written by
hand, are always validated). Validation is a pure function of the text, its
kind, its path, the validation context (for tasks and plans: the project's effective policy,
itself a function of the bytes of ``policy.yaml``) and the code of the rules, the policy merge
and the schemas; the key is a SHA-256 over all of them, so a changed byte, a changed policy or
a changed rule misses the cache and the file is validated again. The cache only
saves time: reading it never fails a command (a missing, torn, foreign or oversized file is
an empty cache), and writing it is atomic (temp file, fsync, rename) and best-effort.

It lives outside the project, in the user's cache folder (``$XDG_CACHE_HOME/conductor/validate/``,
one file per project), so nothing a checkout or an agent's workspace carries can answer for a
document: a fresh clone (CI) always validates every file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from conductor import __version__
from conductor.project.layout import ProjectLayout
from conductor.validation.diagnostics import Diagnostic, Range, Severity
from conductor.validation.limits import MAX_BYTES

MAX_CACHE_BYTES = 64 * 1024 * 1024
"""A cache file larger than this is ignored (and replaced)."""
MAX_ENTRIES = 200_000
"""Above this, only the entries of the last run are kept."""
_LABELS = {s.label: s for s in Severity}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "conductor" / "validate"


def _code_fingerprint() -> str:
    """Changes whenever the rules, the schemas or the version change (sizes and mtimes of their files)."""
    here = Path(__file__).resolve().parent
    contract = here.parent / "contract"
    files = sorted(here.glob("*.py")) + sorted((here.parent / "policy").glob("*.py")) + [
        contract / n for n in ("globs.py", "defaults.py", "checksum.py", "policy.py")]
    try:
        from conductor.contract.schemas import schema_dir  # lazy: only the fingerprint needs where the files are

        files += sorted(schema_dir().glob("*.schema.json"))
    except OSError:
        pass
    digest = hashlib.sha256(__version__.encode())
    for path in files:
        with contextlib.suppress(OSError):
            st = path.stat()
            digest.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()


def _to_json(d: Diagnostic) -> list[Any]:
    r = d.range
    return [r.start_line, r.start_character, r.end_line, r.end_character, int(d.severity), d.code, d.message, d.data]


def _from_json(item: Any) -> Diagnostic:
    sl, sc, el, ec, severity, code, message, data = item
    return Diagnostic(Range(int(sl), int(sc), int(el), int(ec)), Severity(int(severity)), str(code), str(message),
                      dict(data))


class ValidationCache:
    """One project's cache: :meth:`get` / :meth:`put` by key, :meth:`save` once at the end."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.fingerprint = _code_fingerprint()
        self.entries: dict[str, list[Any]] = {}
        self.used: dict[str, list[Any]] = {}
        self.changed = False
        self._policies: dict[Path | None, str] = {}
        if file is not None:
            self.entries = self._read(file)

    @classmethod
    def for_project(cls, root: Path | None) -> ValidationCache:
        """The cache of the project at ``root`` (``None``: files outside any project, not cached)."""
        if root is None:
            return cls(None)
        name = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:32]
        return cls(cache_dir() / f"{name}.json")

    def _read(self, file: Path) -> dict[str, list[Any]]:
        try:
            fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return {}
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CACHE_BYTES:
                return {}
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = json.loads(fh.read())
        except (OSError, ValueError):
            return {}
        finally:
            os.close(fd)
        if not isinstance(data, dict) or data.get("fingerprint") != self.fingerprint:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def key(self, text: str, kind: str, path: Path, context: str) -> str:
        """The key of ``text`` as a ``kind`` document at ``path``, judged in ``context`` (:meth:`policy_key`
        for tasks and plans, which the project's policy judges; ``"-"`` for the others)."""
        digest = hashlib.sha256(f"{kind}\0{path}\0{context}\0".encode())
        digest.update(text.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def policy_key(self, root: Path | None) -> str:
        """What decides the validation context of a project: the bytes of its ``policy.yaml`` (a missing,
        oversized or unreadable one included, each as itself). Read once per cache."""
        if root not in self._policies:
            if root is None:
                self._policies[root] = "no-project"
            else:
                file = ProjectLayout.at(root).policy_file
                try:
                    fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
                except OSError as exc:
                    self._policies[root] = f"unopened:{exc.errno}"
                else:
                    try:
                        st = os.fstat(fd)
                        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
                            self._policies[root] = f"not-read:{st.st_mode}:{st.st_size}"
                        else:
                            with os.fdopen(fd, "rb", closefd=False) as fh:
                                self._policies[root] = hashlib.sha256(fh.read(MAX_BYTES + 1)).hexdigest()
                    except OSError as exc:
                        self._policies[root] = f"unread:{exc.errno}"
                    finally:
                        os.close(fd)
        return self._policies[root]

    def get(self, key: str) -> list[Diagnostic] | None:
        if self.file is None:
            return None
        found = self.entries.get(key)
        if not isinstance(found, list):
            return None
        try:
            diagnostics = [_from_json(item) for item in found]
        except (TypeError, ValueError):
            return None
        self.used[key] = found
        return diagnostics

    def put(self, key: str, diagnostics: list[Diagnostic]) -> None:
        if self.file is None:
            return
        self.used[key] = [_to_json(d) for d in diagnostics]
        self.changed = True

    def save(self) -> None:
        """Write the entries of this run (and earlier ones, up to :data:`MAX_ENTRIES`); never raises."""
        if self.file is None or not self.changed:
            return
        entries = {**self.entries, **self.used} if len(self.entries) + len(self.used) <= MAX_ENTRIES else self.used
        body = json.dumps({"fingerprint": self.fingerprint, "entries": entries}, separators=(",", ":")).encode()
        if len(body) > MAX_CACHE_BYTES:
            return
        with contextlib.suppress(OSError):
            self.file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".validate-", dir=self.file.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(body)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.file)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
