"""Git objects Conductor writes itself: blobs from verified bytes, and a step's trees and commit.

Why a module of its own: a step's commit must hold exactly the verified file tree, never what an
agent staged or committed. Conductor reads each verified file itself (no symlink followed) and
writes its blob, the changed trees (every folder from a changed path up to the root; unchanged
folders keep their tree ids from the base) and the commit straight into the project's object
store as loose objects, in git's own formats — no index, no subprocess per step. The identity and
date are fixed, so the same verified tree on the same base always gives the same commit (a
resumed engine recognises what it already merged). :func:`build_commit_with_git` does the same
with git's plumbing (``read-tree``, ``update-index``, ``write-tree``, ``commit-tree``); the tests
hold the two to the same object ids.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from conductor.git.command import GitError, git, run
from conductor.storage.errors import writing

ZERO = "0" * 40
MODE_FILE, MODE_EXEC, MODE_LINK, MODE_GITLINK = "100644", "100755", "120000", "160000"


MODE_TREE = "40000"


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
    return write_object(objects, "blob", data)


@dataclass(frozen=True)
class TreeIndex:
    """A commit's whole tree: every file entry, and the tree id of every folder (``""`` is the root)."""

    commit: str
    entries: dict[str, Entry]
    trees: dict[str, str]


def tree_index(repo: Path, commit: str) -> TreeIndex:
    """Every path and folder of ``commit``'s tree (two git commands, whatever its size)."""
    commit, root = git(repo, "rev-parse", f"{commit}^{{commit}}", f"{commit}^{{tree}}").split()
    out = run(repo, "ls-tree", "-r", "-t", "-z", "--full-tree", commit).stdout
    entries: dict[str, Entry] = {}
    trees = {"": root}
    for item in out.split(b"\0"):
        if not item:
            continue
        meta, _, raw = item.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        path = raw.decode("utf-8", "surrogateescape")
        if kind == "tree":
            trees[path] = sha
        else:
            entries[path] = Entry(mode, sha)
    return TreeIndex(commit, entries, trees)


def tree_entries(repo: Path, commit: str) -> dict[str, Entry]:
    """Every path of ``commit``'s tree (recursively) with its mode and object id."""
    return tree_index(repo, commit).entries


def write_object(objects: Path, kind: str, body: bytes) -> str:
    """Store a loose object of ``kind`` (atomically; nothing if it exists); its id."""
    data = kind.encode() + b" %d\0" % len(body) + body
    sha = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    target = objects / sha[:2] / sha[2:]
    if target.exists():
        return sha
    packed = zlib.compress(data, 1)
    with writing(target, len(packed)):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(packed)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    return sha


def _tree_body(children: dict[str, tuple[str, str]]) -> bytes:
    """A tree object's body: entries sorted as git sorts them (a folder's name compares with a trailing ``/``)."""
    ordered = sorted(children.items(), key=lambda kv: kv[0].encode("utf-8", "surrogateescape")
                     + (b"/" if kv[1][0] == MODE_TREE else b""))
    return b"".join(mode.encode() + b" " + name.encode("utf-8", "surrogateescape") + b"\0" + bytes.fromhex(sha)
                    for name, (mode, sha) in ordered)


def build_tree(objects: Path, base: TreeIndex, changes: Mapping[str, Entry | None]) -> str:
    """The id of ``base``'s tree with ``changes`` applied (``None`` removes a path), written as loose objects."""
    if not changes:
        return base.trees[""]
    affected = {""}
    for path in changes:
        folder = posixpath.dirname(path)
        while folder and folder not in affected:
            affected.add(folder)
            folder = posixpath.dirname(folder)
    children: dict[str, dict[str, tuple[str, str]]] = {d: {} for d in affected}
    for path, entry in base.entries.items():
        folder = posixpath.dirname(path)
        if folder in children:
            children[folder][posixpath.basename(path)] = (entry.mode, entry.sha)
    for folder, sha in base.trees.items():
        parent = posixpath.dirname(folder)
        if folder and parent in children:
            children[parent][posixpath.basename(folder)] = (MODE_TREE, sha)
    for path, new in changes.items():
        slot = children[posixpath.dirname(path)]
        if new is None:
            slot.pop(posixpath.basename(path), None)
        else:
            slot[posixpath.basename(path)] = (new.mode, new.sha)
    for folder in sorted(affected, key=lambda d: d.count("/") + (d != ""), reverse=True):
        if not folder:
            continue
        up = children[posixpath.dirname(folder)]
        name = posixpath.basename(folder)
        if up.get(name, (None,))[0] not in (None, MODE_TREE):
            continue  # a file now stands where the folder was (its entry came with the changes)
        if children[folder]:
            up[name] = (MODE_TREE, write_object(objects, "tree", _tree_body(children[folder])))
        else:
            up.pop(name, None)  # git keeps no empty folders
    return write_object(objects, "tree", _tree_body(children[""]))


def build_commit(repo: Path, base: TreeIndex, changes: Mapping[str, Entry | None], message: str,
                 date: str) -> tuple[str, str]:
    """``(commit, tree)``: ``base``'s tree with ``changes`` applied, committed on ``base`` by Conductor.

    ``date`` is ``"<epoch seconds> +0000"``; with the fixed identity, the same tree on the same base
    with the same message is the same commit.
    """
    objects = objects_dir(repo)
    tree = build_tree(objects, base, changes)
    who = f"Conductor <conductor@localhost> {date}"
    body = f"tree {tree}\nparent {base.commit}\nauthor {who}\ncommitter {who}\n\n{message.rstrip()}\n"
    return write_object(objects, "commit", body.encode("utf-8")), tree


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


def build_commit_with_git(repo: Path, base: str, changes: Mapping[str, Entry | None], message: str,
                          date: str) -> tuple[str, str]:
    """What :func:`build_commit` does, with git's plumbing in a private index (the reference it is held to)."""
    with writing(git_dir(repo)):
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


__all__ = ["MODE_EXEC", "MODE_FILE", "MODE_GITLINK", "MODE_LINK", "MODE_TREE", "Entry", "GitError", "TreeIndex",
           "blob_id", "build_commit", "build_commit_with_git", "build_tree", "commit_tree", "git_dir", "is_ancestor",
           "objects_dir", "parents_of", "read_blobs", "tree_entries", "tree_index", "write_blob", "write_object"]
