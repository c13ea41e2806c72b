"""Snapshots of a workspace before hand-off, and what changed since.

Why a module of its own: Conductor judges a step by what really changed on disk, never by
what the agent says. Before the task is written, the workspace is snapshotted: a SHA-256
(and mode) of every file, ``.conductor/`` and ``.git/`` excluded. After the result, a second
snapshot gives the files created, modified and deleted and the diff size.

* In a git work tree the file list comes from git: tracked files plus untracked files that
  are not ignored (``git ls-files``), plus ignored files that match a protected pattern
  (so a gitignored ``.env`` is still guarded). Other ignored files (build output,
  ``node_modules``) are not watched.
* Elsewhere every file under the workspace is walked.

Before-content is kept so violations can be rolled back and diffs counted: files up to
1 MiB are kept in memory (64 MiB per snapshot at most), except tracked files identical to
git's index, whose content git already holds (read back with ``git cat-file``).

Diff size: lines added plus removed (``difflib``) for text files; a created file counts
its lines, a deleted file its former lines. A binary file (NUL byte or not UTF-8) counts
as 1 line per file; a modified file whose before-content was not kept counts its lines now.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conductor.policy.globs import matches_protected

CONTENT_LIMIT = 1 << 20
TOTAL_CONTENT_LIMIT = 64 << 20
EXCLUDED_TOP = (".conductor", ".git")


@dataclass(frozen=True)
class FileState:
    sha256: str
    size: int
    mode: int
    symlink: bool = False
    content: bytes | None = None  # kept before-content (or symlink target)
    git_blob: str | None = None  # index blob id when the file equals git's index entry


@dataclass
class Snapshot:
    workspace: Path
    method: Literal["git", "walk"]
    files: dict[str, FileState] = field(default_factory=dict)

    def content_of(self, path: str) -> bytes | None:
        """The before-content of ``path`` (kept bytes, or git's copy), ``None`` if unknown."""
        state = self.files.get(path)
        if state is None:
            return None
        if state.content is not None:
            return state.content
        if state.git_blob is not None:
            proc = subprocess.run(["git", "cat-file", "blob", state.git_blob], cwd=self.workspace,
                                  capture_output=True, check=False)
            if proc.returncode == 0:
                return proc.stdout
        return None

    def to_json(self) -> dict[str, Any]:
        """Hashes and modes only (no content): enough to find changes after a restart."""
        return {"workspace": str(self.workspace), "method": self.method, "files": {
            rel: [st.sha256, st.size, st.mode, st.symlink, st.git_blob] for rel, st in self.files.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        files = {rel: FileState(sha, size, mode, symlink=bool(link), git_blob=blob)
                 for rel, (sha, size, mode, link, blob) in data["files"].items()}
        return cls(Path(data["workspace"]), data["method"], files)

    def digests(self, paths: list[str]) -> dict[str, str | None]:
        return {p: (self.files[p].sha256 if p in self.files else None) for p in paths}


@dataclass
class Changes:
    created: list[str]
    modified: list[str]
    deleted: list[str]
    diff_lines: int
    per_file: dict[str, int]

    @property
    def changed(self) -> list[str]:
        return sorted({*self.created, *self.modified, *self.deleted})


def _git(workspace: Path, *args: str) -> bytes | None:
    try:
        proc = subprocess.run(["git", *args], cwd=workspace, capture_output=True, check=False)
    except FileNotFoundError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def is_git_worktree(workspace: Path) -> bool:
    out = _git(workspace, "rev-parse", "--is-inside-work-tree")
    return out is not None and out.strip() == b"true"


def _excluded(rel: str) -> bool:
    first = rel.split("/", 1)[0]
    return first in EXCLUDED_TOP


def _git_listing(workspace: Path, protected: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """(index blob ids of tracked files, other files to watch), or ``None`` if git fails."""
    spec = ["--", ".", ":(exclude).conductor"]
    staged = _git(workspace, "ls-files", "-z", "-s", "--cached", *spec)
    others = _git(workspace, "ls-files", "-z", "--others", "--exclude-standard", *spec)
    if staged is None or others is None:
        return None
    index: dict[str, str] = {}
    for entry in staged.split(b"\0"):
        if not entry:
            continue
        meta, _, path = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) >= 2:
            index[path.decode("utf-8", "surrogateescape")] = parts[1].decode()
    extra = [p.decode("utf-8", "surrogateescape") for p in others.split(b"\0") if p]
    if protected:
        ignored = _git(workspace, "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                       "--directory", *spec) or b""
        for raw in ignored.split(b"\0"):
            rel = raw.decode("utf-8", "surrogateescape")
            if rel and not rel.endswith("/") and matches_protected(rel, protected):
                extra.append(rel)
    return index, extra


def _walk(workspace: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(workspace):
        rel_dir = os.path.relpath(dirpath, workspace)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in EXCLUDED_TOP]
            prefix = ""
        else:
            dirnames[:] = [d for d in dirnames if d != ".git"]
            prefix = rel_dir.replace(os.sep, "/") + "/"
        # Symlinks to folders are recorded as links, not followed.
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                dirnames.remove(d)
                out.append(prefix + d)
        out.extend(prefix + name for name in filenames)
    return out


def _hash_file(full: Path, want_blob: bool, keep: bool) -> FileState | None:
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(full).encode("utf-8", "surrogateescape")
        return FileState(hashlib.sha256(b"symlink:" + target).hexdigest(), len(target), st.st_mode,
                         symlink=True, content=target)
    if not stat.S_ISREG(st.st_mode):
        return None
    sha = hashlib.sha256()
    blob = hashlib.sha1(b"blob %d\0" % st.st_size, usedforsecurity=False) if want_blob else None
    chunks: list[bytes] = []
    size = 0
    try:
        with open(full, "rb") as fh:
            while chunk := fh.read(1 << 20):
                sha.update(chunk)
                if blob is not None:
                    blob.update(chunk)
                size += len(chunk)
                if keep and size <= CONTENT_LIMIT:
                    chunks.append(chunk)
    except (FileNotFoundError, IsADirectoryError):
        return None
    content = b"".join(chunks) if keep and size <= CONTENT_LIMIT else None
    return FileState(sha.hexdigest(), size, st.st_mode, content=content,
                     git_blob=blob.hexdigest() if blob is not None else None)


def take_snapshot(workspace: Path, protected: list[str] | None = None, baseline: Snapshot | None = None,
                  use_git: bool | None = None) -> Snapshot:
    """Hash every watched file of ``workspace``.

    With ``baseline``, content is kept only for files that differ from it (the "after"
    snapshot needs the new content of changed files only, to count diff lines).
    """
    workspace = Path(workspace)
    git = is_git_worktree(workspace) if use_git is None else use_git
    listing = _git_listing(workspace, list(protected or [])) if git else None
    snap = Snapshot(workspace, "git" if listing is not None else "walk")
    if listing is not None:
        index, extra = listing
        paths = sorted({*index, *extra})
    else:
        index = {}
        paths = sorted(_walk(workspace))
    budget = TOTAL_CONTENT_LIMIT
    for rel in paths:
        if _excluded(rel):
            continue
        state = _hash_file(workspace / rel, want_blob=rel in index, keep=budget > 0)
        if state is None:
            continue
        if not state.symlink:
            in_index = index.get(rel) == state.git_blob and state.git_blob is not None
            unchanged = baseline is not None and baseline.files.get(rel, None) is not None \
                and baseline.files[rel].sha256 == state.sha256
            drop_content = in_index or unchanged
            state = FileState(state.sha256, state.size, state.mode, content=None if drop_content else state.content,
                              git_blob=state.git_blob if in_index else None)
        if state.content is not None:
            budget -= len(state.content)
        snap.files[rel] = state
    return snap


def _is_binary(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8").splitlines()


def count_diff_lines(before: bytes | None, after: bytes | None) -> int:
    """Lines added plus removed between two versions (``None`` = file absent)."""
    if (before is not None and _is_binary(before)) or (after is not None and _is_binary(after)):
        return 1
    if before is None and after is None:
        return 0
    if before is None:
        return len(_lines(after or b""))
    if after is None:
        return len(_lines(before))
    return sum(1 for line in difflib.unified_diff(_lines(before), _lines(after), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---")))


def compare(before: Snapshot, after: Snapshot, only: set[str] | None = None) -> Changes:
    """What changed from ``before`` to ``after`` (restricted to ``only`` when given)."""
    keys = set(before.files) | set(after.files)
    if only is not None:
        keys &= only
    created, modified, deleted = [], [], []
    per_file: dict[str, int] = {}
    for rel in sorted(keys):
        old, new = before.files.get(rel), after.files.get(rel)
        if old is not None and new is not None and old.sha256 == new.sha256:
            continue
        if old is None:
            created.append(rel)
        elif new is None:
            deleted.append(rel)
        else:
            modified.append(rel)
        old_content = before.content_of(rel) if old is not None else None
        new_content = after.files[rel].content if new is not None else None
        if old is not None and old_content is None:
            per_file[rel] = count_diff_lines(None, new_content) if new_content is not None else 1
        elif new is not None and new_content is None:
            per_file[rel] = 1  # content too large to keep: counted as one change
        else:
            per_file[rel] = count_diff_lines(old_content, new_content)
    return Changes(created, modified, deleted, sum(per_file.values()), per_file)


def rebase(snapshot: Snapshot, current: Snapshot, paths: list[str]) -> None:
    """Accept ``paths`` as they are in ``current`` into ``snapshot`` (changes judged elsewhere)."""
    for rel in paths:
        if rel in current.files:
            snapshot.files[rel] = current.files[rel]
        else:
            snapshot.files.pop(rel, None)
