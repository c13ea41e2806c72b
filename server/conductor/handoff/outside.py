"""Writes outside an attempt: the user's checkout and Conductor's own files, watched around each attempt.

Why a module of its own: an agent Conductor did not start (an IDE agent) can write anywhere the
user can. Its attempt's working copy is judged by :mod:`conductor.handoff.tree`; this module sees
what changed *elsewhere in the project* while the attempt ran: files of the user's checkout, and
``.conductor/policy.yaml``, ``config.yaml``, ``trust.json`` and ``keys/`` (changing those is
tampering with the rules themselves). A snapshot is ``lstat`` only (a ctime cannot be set back,
so any write shows), plus what is needed to undo a change: the git blob id of each file tracked
in ``HEAD`` (from a cache, so unchanged files are hashed once per engine) and the bytes of
Conductor's own small files.

Conductor's runtime folders (hand-off, plans, attempts, quarantine, history) are not watched:
Conductor writes there itself. Folders the checkout's ``.gitignore`` ignores are not walked
(build output, ``node_modules``), except under ``.conductor``.

:meth:`ProjectWatch.undo` puts back what it can: a created path is moved to the quarantine
folder (nothing is deleted), a tracked file that was as in ``HEAD`` gets its ``HEAD`` content
back, Conductor's files get their bytes back; anything else is reported as left in place.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from conductor.git.command import GitError
from conductor.git.objects import Entry, blob_id, git_dir, read_blobs, tree_entries
from conductor.git.shared import read_head
from conductor.handoff.tree import IgnoreRules, StatKey, stat_key
from conductor.project.layout import ProjectLayout

KEEP_BYTES_LIMIT = 1 << 20


@dataclass
class Checkout:
    """A snapshot of the project outside the attempts."""

    stats: dict[str, StatKey] = field(default_factory=dict)
    blobs: dict[str, str] = field(default_factory=dict)  # tracked file -> blob id at snapshot time
    kept: dict[str, bytes] = field(default_factory=dict, repr=False)  # Conductor's own files -> bytes
    head_tree: dict[str, Entry] = field(default_factory=dict, repr=False)


@dataclass
class Undo:
    restored: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


class ProjectWatch:
    """Snapshots of the project's checkout and Conductor's own files (see the module docstring)."""

    def __init__(self, layout: ProjectLayout) -> None:
        self.layout = layout
        self.root = layout.root
        self.skip = {layout.relative_path(p) for p in layout.runtime_paths()}
        self._hash_cache: dict[tuple[str, StatKey], str] = {}
        self._head: tuple[str, dict[str, Entry], IgnoreRules] | None = None
        self._gitdir: Path | None = None

    def _head_tree(self) -> tuple[dict[str, Entry], IgnoreRules]:
        if self._gitdir is None:
            try:
                self._gitdir = git_dir(self.root)
            except GitError:
                return {}, IgnoreRules({})
        head = read_head(self._gitdir) or ""
        if self._head is None or self._head[0] != head:
            entries = tree_entries(self.root, head) if head else {}
            self._head = (head, entries, IgnoreRules.of_tree(self.root, entries) if head else IgnoreRules({}))
        return self._head[1], self._head[2]

    def conductor_file(self, rel: str) -> bool:
        return rel.startswith(".conductor/")

    def snapshot(self) -> Checkout:
        tree, ignore = self._head_tree()
        snap = Checkout(head_tree=tree)
        self._walk(self.root, "", snap, tree, ignore)
        return snap

    def _walk(self, full: Path, rel_dir: str, snap: Checkout, tree: dict[str, Entry], ignore: IgnoreRules) -> None:
        try:
            entries = list(os.scandir(full))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if rel == ".git" or rel in self.skip:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            ours = self.conductor_file(rel) or rel == ".conductor"
            if stat.S_ISDIR(st.st_mode):
                if not ours and rel not in tree and ignore.ignored(rel, True):
                    continue
                self._walk(Path(entry.path), rel, snap, tree, ignore)
                continue
            key = stat_key(st)
            snap.stats[rel] = key
            if not stat.S_ISREG(st.st_mode):
                continue
            if ours and st.st_size <= KEEP_BYTES_LIMIT:
                data = _read(entry.path)
                if data is not None:
                    snap.kept[rel] = data
            elif rel in tree:
                cached = self._hash_cache.get((rel, key))
                if cached is None:
                    data = _read(entry.path)
                    if data is None:
                        continue
                    cached = blob_id(data)
                    self._hash_cache[(rel, key)] = cached
                snap.blobs[rel] = cached

    @staticmethod
    def changes(before: Checkout, after: Checkout) -> list[str]:
        """Paths created, deleted or written (any ``lstat`` change) from ``before`` to ``after``."""
        keys = set(before.stats) | set(after.stats)
        return sorted(p for p in keys if before.stats.get(p) != after.stats.get(p))

    def undo(self, before: Checkout, paths: list[str], quarantine: Path) -> Undo:
        """Put ``paths`` back as they were in ``before`` where possible (see the module docstring)."""
        done = Undo()
        head = before.head_tree or self._head_tree()[0]  # a snapshot loaded after a restart carries no tree
        wanted = {before.blobs[p] for p in paths if p in before.blobs and p not in before.kept
                  and head.get(p) is not None and head[p].sha == before.blobs[p]}
        blobs = read_blobs(self.root, wanted) if wanted else {}
        for rel in paths:
            full = self.root / rel
            existed = rel in before.stats
            if rel in before.kept:
                old: bytes | None = before.kept[rel]
            elif rel in before.blobs:
                old = blobs.get(before.blobs[rel])
            else:
                old = None
            if existed and old is None:
                done.left.append(rel)  # the user's own untracked or modified file: not ours to guess
                continue
            try:
                if os.path.lexists(full):
                    dest = quarantine / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(full, dest)
                if old is None:
                    done.quarantined.append(rel)
                else:
                    _write(full, old, before.stats[rel][0])
                    done.restored.append(rel)
            except OSError:
                done.left.append(rel)
        return done


def _read(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.conductor-restore")
    with open(tmp, "wb") as fh:
        fh.write(data)
    with contextlib.suppress(OSError):
        os.chmod(tmp, stat.S_IMODE(mode))
    os.replace(tmp, path)
