"""Attempt working copies: a throwaway git repository per attempt, borrowing the project's objects.

Why a module of its own: an attempt must own every piece of git state it can touch — index,
HEAD, refs, hooks, config — so that nothing it does there reaches the project, the fork or
another attempt, and honest attempts side by side never meet each other's locks. A copy is what
``git clone --shared`` makes, built directly: a ``.git`` folder whose ``objects/info/alternates``
names the project's object store (no object copied), one branch ``attempt`` at the base commit,
no hooks, no remote; then one ``read-tree -u`` checks the files out. Conductor never runs git
inside a copy after that; an agent may commit, amend or reset there as it likes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
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
