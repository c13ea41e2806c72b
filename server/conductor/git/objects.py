"""Git objects Conductor writes itself: blobs from verified bytes, and a step's tree and commit.

Why a module of its own: a step's commit must hold exactly the verified file tree, never what an
agent staged or committed. Conductor reads each verified file itself (no symlink followed), writes
its blob straight into the project's object store, and builds the tree from the base commit's tree
plus those entries in a private index (``read-tree``, ``update-index --index-info``,
``write-tree``), then ``commit-tree`` with a fixed identity and date, so the same verified tree
on the same base always gives the same commit (a resumed engine recognises what it already merged).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from conductor.git.command import GitError, git, run

ZERO = "0" * 40
MODE_FILE, MODE_EXEC, MODE_LINK, MODE_GITLINK = "100644", "100755", "120000", "160000"


@dataclass(frozen=True)
class Entry:
    """One entry of a tree: ``mode`` (``100644``, ``100755``, ``120000``, ``160000``) and object id."""

    mode: str
    sha: str

    @property
    def kind(self) -> str:
        return {MODE_LINK: "symlink", MODE_GITLINK: "submodule"}.get(self.mode, "file")


_GIT_DIRS: dict[Path, Path] = {}


def git_dir(repo: Path) -> Path:
    """The repository's git folder (``.git``, or where a ``.git`` file points); asked once per repository."""
    key = Path(repo)
    if key not in _GIT_DIRS:
        _GIT_DIRS[key] = Path(git(key, "rev-parse", "--absolute-git-dir"))
    return _GIT_DIRS[key]


def objects_dir(repo: Path) -> Path:
    return git_dir(repo) / "objects"


def blob_id(data: bytes) -> str:
    """The git object id of a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def write_blob(objects: Path, data: bytes) -> str:
    """Store ``data`` as a loose blob in ``objects`` (atomically; nothing if it exists); its id."""
    sha = blob_id(data)
    target = objects / sha[:2] / sha[2:]
    if target.exists():
        return sha
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(zlib.compress(b"blob %d\0" % len(data) + data, 1))
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return sha


def tree_entries(repo: Path, commit: str) -> dict[str, Entry]:
    """Every path of ``commit``'s tree (recursively) with its mode and object id."""
    out = run(repo, "ls-tree", "-r", "-z", "--full-tree", commit).stdout
    entries: dict[str, Entry] = {}
    for item in out.split(b"\0"):
        if not item:
            continue
        meta, _, path = item.partition(b"\t")
        mode, _kind, sha = meta.decode().split()
        entries[path.decode("utf-8", "surrogateescape")] = Entry(mode, sha)
    return entries


def read_blobs(repo: Path, shas: Iterable[str]) -> dict[str, bytes]:
    """The content of each blob (one ``cat-file --batch`` for all of them)."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    out = run(repo, "cat-file", "--batch", input="".join(f"{s}\n" for s in wanted).encode()).stdout
    blobs: dict[str, bytes] = {}
    pos = 0
    for sha in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        blobs[sha] = out[pos:pos + size]
        pos += size + 1
    return blobs


def build_commit(repo: Path, base: str, changes: Mapping[str, Entry | None], message: str,
                 date: str) -> tuple[str, str]:
    """``(commit, tree)``: ``base``'s tree with ``changes`` applied (``None`` removes the path), on ``base``.

    ``date`` (``"<epoch seconds> +0000"`` or ISO 8601) is the author and committer date, so the
    same tree on the same base with the same message is the same commit.
    """
    fd, index = tempfile.mkstemp(prefix="conductor-index-", dir=git_dir(repo))
    os.close(fd)
    os.unlink(index)  # read-tree creates it
    env = {"GIT_INDEX_FILE": index, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    try:
        run(repo, "read-tree", base, env=env)
        if changes:
            lines = []
            for path, entry in sorted(changes.items()):
                if entry is None:
                    lines.append(f"0 {ZERO}\t{path}")
                else:
                    lines.append(f"{entry.mode} {entry.sha}\t{path}")
            run(repo, "update-index", "-z", "--index-info",
                input="\0".join(lines).encode("utf-8", "surrogateescape") + b"\0", env=env)
        tree = git(repo, "write-tree", env=env)
        commit = git(repo, "commit-tree", tree, "-p", base, "-m", message, env=env)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(index)
    return commit, tree


def commit_tree(repo: Path, tree: str, parents: list[str], message: str, date: str) -> str:
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    return git(repo, *args, "-m", message, env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})


def parents_of(repo: Path, commit: str) -> list[str]:
    out = git(repo, "rev-list", "--parents", "-n", "1", commit)
    return out.split()[1:]


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    return run(repo, "merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0


__all__ = ["MODE_EXEC", "MODE_FILE", "MODE_GITLINK", "MODE_LINK", "Entry", "GitError", "blob_id", "build_commit",
           "commit_tree", "git_dir", "is_ancestor", "objects_dir", "parents_of", "read_blobs", "tree_entries",
           "write_blob"]
