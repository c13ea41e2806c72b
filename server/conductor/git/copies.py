"""Attempt working copies: a throwaway git repository per attempt, borrowing the project's objects.

Why a module of its own: an attempt must own every piece of git state it can touch — index,
HEAD, refs, hooks, config — so that nothing it does there reaches the project, the fork or
another attempt, and honest attempts side by side never meet each other's locks. A copy is what
``git clone --shared`` makes, built directly: a ``.git`` folder whose ``objects/info/alternates``
names the project's object store (no object copied), one branch ``attempt`` at the base commit,
no hooks, no remote; then one ``read-tree -u`` checks the files out. Conductor never runs git
inside a copy after that; an agent may commit, amend or reset there as it likes.

Checking out every file of a big tree is the one cost of a copy that grows with the project, so
Conductor may make a **spare** copy ahead of time (:func:`prepare`), off the path between one
step's result and the next step's task. A spare is never handed to anyone before it is adopted
(:func:`adopt`): it is moved into the attempt's place, proven untouched since it was made (the
``lstat`` of everything in it, its ``.git`` included, is what it was: a ctime cannot be set back),
and brought to the attempt's base commit by a two-tree ``read-tree -u -m``, which rewrites only
the files that differ. A spare that changed in any way is deleted and a fresh copy is made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from conductor.git.command import run
from conductor.git.objects import objects_dir
from conductor.storage.errors import DiskFull, writing

BRANCH = "attempt"
CONFIG = """[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
\tlogallrefupdates = true
[user]
\tname = Conductor agent
\temail = agent@conductor.invalid
"""


def create(repo: Path, dest: Path, commit: str) -> Path:
    """A new working copy of ``repo`` at ``commit`` in ``dest`` (which must not exist); returns ``dest``."""
    dest = Path(dest)
    if os.path.lexists(dest):
        remove(dest)
    dot_git = dest / ".git"
    try:
        with writing(dest):
            (dot_git / "objects" / "info").mkdir(parents=True)
            (dot_git / "refs" / "heads").mkdir(parents=True)
            (dot_git / "refs" / "tags").mkdir(parents=True)
            (dot_git / "objects" / "info" / "alternates").write_text(f"{objects_dir(repo)}\n")
            (dot_git / "HEAD").write_text(f"ref: refs/heads/{BRANCH}\n")
            (dot_git / "config").write_text(CONFIG)
            (dot_git / "refs" / "heads" / BRANCH).write_text(f"{commit}\n")
        run(dest, "read-tree", "-u", "--reset", commit)
    except DiskFull:
        with contextlib.suppress(OSError):
            remove(dest)  # a half-made copy helps nobody; the attempt is made again after the halt
        raise
    return dest


#: (mode, size, mtime_ns, ctime_ns, ino) of every path in a copy, relative to it.
Snapshot = dict[str, tuple[int, int, int, int, int]]


@dataclass
class Spare:
    """A copy made ahead of time at ``commit``, with the snapshot taken right after it was made."""

    path: Path
    commit: str
    snapshot: Snapshot = field(repr=False)


def snapshot(dest: Path) -> Snapshot:
    """``lstat`` of every path under ``dest`` (not ``dest`` itself), walking without following symlinks."""
    out: Snapshot = {}
    stack = [(str(dest), "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                rel = prefix + entry.name
                out[rel] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((entry.path, rel + "/"))
    return out


#: Everything :func:`create` puts in a copy's ``.git``.
GIT_PATHS = frozenset({".git", ".git/HEAD", ".git/config", ".git/index", ".git/objects", ".git/objects/info",
                       ".git/objects/info/alternates", ".git/refs", ".git/refs/heads", f".git/refs/heads/{BRANCH}",
                       ".git/refs/tags"})


class SpareTouched(RuntimeError):
    """Something other than Conductor wrote into a spare copy while it was being made."""


def prepare(repo: Path, dest: Path, commit: str) -> Spare:
    """A spare working copy of ``repo`` at ``commit`` in ``dest`` (see the module docstring).

    Its snapshot is taken once it is made, then the copy is proven to be what :func:`create` makes
    (``.git`` holds only what Conductor wrote, word for word; git finds every file as checked out and
    nothing else): a write during the making raises :class:`SpareTouched`, one after it shows in the
    snapshot when the spare is adopted.
    """
    dest = Path(dest)
    create(repo, dest, commit)
    taken = snapshot(dest)
    expected = {"HEAD": f"ref: refs/heads/{BRANCH}\n", "config": CONFIG,
                "objects/info/alternates": f"{objects_dir(repo)}\n", f"refs/heads/{BRANCH}": f"{commit}\n"}
    if {p for p in taken if p == ".git" or p.startswith(".git/")} != GIT_PATHS or any(
            _read_small(dest / ".git" / rel) != text for rel, text in expected.items()):
        raise SpareTouched(f"{dest}: its .git changed while it was being made")
    status = run(dest, "status", "--porcelain", "-z", "--untracked-files=all", "--ignored=matching").stdout
    if status:
        raise SpareTouched(f"{dest}: changed while it was being made: {status[:200]!r}")
    return Spare(dest, commit, taken)


def _read_small(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(1 << 16).decode("utf-8", "replace")


def adopt(repo: Path, spare: Spare, dest: Path, commit: str) -> bool:
    """Move ``spare`` to ``dest`` (which must not exist) and bring it to ``commit``.

    ``False`` when the spare cannot be used (it changed since it was made, or git refused): it is
    deleted and ``dest`` does not exist; make a fresh copy with :func:`create` then.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(spare.path, dest)
    except OSError:
        with contextlib.suppress(OSError):
            remove(spare.path)
        return False
    try:
        if snapshot(dest) != spare.snapshot:
            remove(dest)
            return False
        if commit != spare.commit:
            with writing(dest):
                run(dest, "read-tree", "-u", "-m", spare.commit, commit)
                (dest / ".git" / "refs" / "heads" / BRANCH).write_text(f"{commit}\n")
    except DiskFull:
        with contextlib.suppress(OSError):
            remove(dest)
        raise
    except Exception:
        with contextlib.suppress(OSError):
            remove(dest)
        return False
    return True


def _writable(func: object, path: str, _exc: object) -> None:
    """rmtree's error handler: an agent may have made a folder read-only; make it writable, retry."""
    with contextlib.suppress(OSError):
        parent = os.path.dirname(path)
        os.chmod(parent, stat.S_IRWXU)
        if not os.path.islink(path) and os.path.isdir(path):
            os.chmod(path, stat.S_IRWXU)
            shutil.rmtree(path, onerror=_writable)
        else:
            os.unlink(path)


def remove(dest: Path) -> None:
    """Delete a working copy (never following a symlink out of it)."""
    dest = Path(dest)
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
        return
    if dest.exists():
        shutil.rmtree(dest, onerror=_writable)
