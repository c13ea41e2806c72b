"""The git state shared beyond an attempt, fingerprinted around it and put back when an agent changed it.

Why a module of its own: an agent owns its attempt's repository, but not the project's — its
hooks (which would run inside Conductor's merges), its config, its other branches and refs, the
user's HEAD and index, the object store's alternates and grafts. :meth:`SharedGit.snapshot`
records all of that (file bytes, ref values); :meth:`SharedGit.changes` names what differs at
the end of an attempt; :meth:`SharedGit.restore` undoes it exactly (files written back or moved
to quarantine, refs moved back or deleted). Refs Conductor moves itself while the attempt runs
(the running plan's fork branches) are checked against the values Conductor set, not against the
snapshot.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conductor.git.command import git, run
from conductor.git.objects import git_dir

INDEX_COPY_LIMIT = 16 << 20
WATCHED_FILES = ("config", "HEAD", "shallow", "commondir", "objects/info/alternates", "objects/info/http-alternates")
WATCHED_DIRS = ("hooks", "info")


@dataclass
class SharedState:
    files: dict[str, bytes]  # path relative to the git folder (or "hooks:" + name for an outside hooks folder)
    refs: dict[str, str]
    index: tuple[int, int, int, int] | None  # (size, mtime_ns, ctime_ns, ino)
    index_bytes: bytes | None = field(default=None, repr=False)


class SharedGit:
    """Fingerprints of the project repository's shared git state (see the module docstring)."""

    def __init__(self, repo: Path, owned_prefix: str | None = None) -> None:
        self.repo = Path(repo)
        self.gitdir = git_dir(self.repo)
        # the repository's own hooks folder (Conductor's commands override core.hooksPath, so ask the file)
        configured = git(self.repo, "config", "--local", "--get", "core.hooksPath", check=False)
        hooks = Path(configured).expanduser() if configured else self.gitdir / "hooks"
        self.hooks = hooks if hooks.is_absolute() else (self.repo / hooks)
        self.owned_prefix = owned_prefix  # e.g. "refs/heads/conductor/<plan_id>/"
        self.expected: dict[str, str] = {}  # owned ref -> the value Conductor set

    # ------------------------------------------------------------------ reading
    def _read_tree(self, base: Path, label: str, out: dict[str, bytes]) -> None:
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                full = Path(dirpath) / name
                rel = f"{label}/{full.relative_to(base).as_posix()}"
                out[rel] = _read_entry(full)

    def snapshot(self) -> SharedState:
        files: dict[str, bytes] = {}
        for rel in WATCHED_FILES:
            path = self.gitdir / rel
            if os.path.lexists(path):
                files[rel] = _read_entry(path)
        for rel in WATCHED_DIRS:
            base = self.hooks if rel == "hooks" else self.gitdir / rel
            if base.is_dir():
                self._read_tree(base, rel, files)
        refs = {name: sha for name, sha in self._refs().items()
                if not (self.owned_prefix and name.startswith(self.owned_prefix))}
        index_path = self.gitdir / "index"
        index = index_bytes = None
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(index_path)
            index = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            if st.st_size <= INDEX_COPY_LIMIT:
                index_bytes = index_path.read_bytes()
        return SharedState(files, refs, index, index_bytes)

    def _refs(self) -> dict[str, str]:
        """Every ref and its value, read from the files (loose refs over ``packed-refs``); git when it uses
        another ref store."""
        if (self.gitdir / "reftable").exists():
            out = run(self.repo, "for-each-ref", "--format=%(objectname) %(refname)").stdout.decode("utf-8", "replace")
            return {name: sha for sha, _, name in (line.partition(" ") for line in out.splitlines())}
        refs: dict[str, str] = {}
        with contextlib.suppress(FileNotFoundError):
            for line in (self.gitdir / "packed-refs").read_text(errors="replace").splitlines():
                if line and line[0] not in "#^":
                    sha, _, name = line.partition(" ")
                    refs[name] = sha
        base = self.gitdir / "refs"
        for dirpath, _dirnames, filenames in os.walk(base):
            for name in filenames:
                full = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    value = full.read_text(errors="replace").strip()
                    if value:
                        refs["refs/" + full.relative_to(base).as_posix()] = value
        return refs

    def owned_refs(self) -> dict[str, str]:
        if not self.owned_prefix:
            return {}
        return {name: sha for name, sha in self._refs().items() if name.startswith(self.owned_prefix)}

    # ------------------------------------------------------------------ judging
    def changes(self, before: SharedState, after: SharedState) -> list[str]:
        """What changed from ``before`` to ``after``, each as ``<what> <how>`` (``hooks/pre-commit created``)."""
        found: list[str] = []
        for rel in sorted(set(before.files) | set(after.files)):
            old, new = before.files.get(rel), after.files.get(rel)
            if old != new:
                how = "created" if old is None else "deleted" if new is None else "modified"
                found.append(f".git/{rel} {how}")
        for name in sorted(set(before.refs) | set(after.refs)):
            old_sha, new_sha = before.refs.get(name), after.refs.get(name)
            if old_sha != new_sha:
                how = "created" if old_sha is None else "deleted" if new_sha is None else "moved"
                found.append(f"{name} {how}")
        for name, sha in sorted(self.owned_refs().items()):
            expected = self.expected.get(name)
            if expected is not None and expected != sha:
                found.append(f"{name} moved (Conductor's fork branch)")
        if before.index != after.index and (before.index_bytes is None or after.index_bytes != before.index_bytes):
            found.append(".git/index modified (the user's staging area)")
        return found

    def restore(self, before: SharedState, after: SharedState, quarantine: Path) -> list[str]:
        """Put back what changed; returns what could not be put back."""
        failed: list[str] = []
        for rel in sorted(set(before.files) | set(after.files)):
            old, new = before.files.get(rel), after.files.get(rel)
            if old == new:
                continue
            target = self._path(rel)
            try:
                if new is not None:
                    dest = quarantine / ".git" / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(target, dest)
                if old is not None:
                    _write_entry(target, old)
            except OSError as exc:
                failed.append(f".git/{rel}: {exc.strerror}")
        for name in sorted(set(before.refs) | set(after.refs)):
            old_sha, new_sha = before.refs.get(name), after.refs.get(name)
            if old_sha == new_sha:
                continue
            if old_sha is None:
                proc = run(self.repo, "update-ref", "-d", name, check=False)
            else:
                proc = run(self.repo, "update-ref", name, old_sha, check=False)
            if proc.returncode != 0:
                failed.append(f"{name}: {proc.stderr.decode('utf-8', 'replace').strip()}")
        for name, sha in self.owned_refs().items():
            expected = self.expected.get(name)
            if expected is not None and expected != sha:
                run(self.repo, "update-ref", name, expected, check=False)
        if before.index != after.index and before.index_bytes is not None and after.index_bytes != before.index_bytes:
            try:
                _write_entry(self.gitdir / "index", b"F644:" + before.index_bytes)
            except OSError as exc:
                failed.append(f".git/index: {exc.strerror}")
        elif before.index != after.index and before.index_bytes is None:
            failed.append(".git/index (too large to keep a copy)")
        return failed

    def _path(self, rel: str) -> Path:
        label, _, rest = rel.partition("/")
        if label == "hooks" and rest:
            return self.hooks / rest
        return self.gitdir / rel

    def expect(self, refs: Mapping[str, str]) -> None:
        """Record the values Conductor itself gave its fork branches."""
        self.expected.update({k if k.startswith("refs/") else f"refs/heads/{k}": v for k, v in refs.items()})


def _read_entry(path: Path) -> bytes:
    """A fingerprint of one file: ``F`` + its bytes, ``L`` + a symlink's target, ``M`` + mode for the rest."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return b"L" + os.readlink(path).encode("utf-8", "surrogateescape")
    if stat.S_ISREG(st.st_mode):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            return b"F%o:" % stat.S_IMODE(st.st_mode) + fh.read()
    return b"M%o" % st.st_mode


def _write_entry(path: Path, entry: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if entry[:1] == b"L":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.symlink(entry[1:].decode("utf-8", "surrogateescape"), path)
    elif entry[:1] == b"F":
        head, _, data = entry[1:].partition(b":")
        mode = int(head.decode(), 8) if head and head.isdigit() else 0o644
        tmp = path.with_name(f".{path.name}.conductor-restore")
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)


def read_head(gitdir: Path) -> str | None:
    """The commit ``HEAD`` names, read from the files (no git process); ``None`` when there is none yet."""
    try:
        head = (gitdir / "HEAD").read_text(errors="replace").strip()
    except OSError:
        return None
    if not head.startswith("ref: "):
        return head or None
    name = head[5:].strip()
    with contextlib.suppress(OSError):
        value = (gitdir / name).read_text(errors="replace").strip()
        if value:
            return value
    with contextlib.suppress(OSError):
        for line in (gitdir / "packed-refs").read_text(errors="replace").splitlines():
            sha, _, ref = line.partition(" ")
            if ref == name:
                return sha
    return None
