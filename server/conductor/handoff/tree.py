"""What an attempt really changed: its working copy's file tree against the tree it was handed.

Why a module of its own: this is the evidence. The base is the commit the attempt's working copy
was checked out at — read from the project's object store, never from the agent's repository.
The working copy is walked with ``lstat`` (no symlink is ever followed, nothing is read through
one) and every path is compared with the base:

* **created**, **modified**, **deleted**: content (git blob ids), for files and symlink targets;
* **mode changed**: the executable bit of a file (the only mode git keeps);
* **type changed**: file ↔ symlink ↔ folder;
* paths git cannot store (a ``.git`` component, FIFOs, sockets, devices) and files over the size
  limit are named so the verdict can refuse them.

The attempt's own repository metadata (the top-level ``.git``) is not evidence: an agent may
commit, amend or reset there; only the resulting tree counts. Untracked paths that the base
commit's ``.gitignore`` files ignore (build output, caches) are not evidence either and never
reach the step's commit. A stat cache taken right after checkout spares hashing files whose
``lstat`` did not change (a ctime cannot be set back, so a changed file always shows).

The result also carries what the step's commit needs (:attr:`Scan.entries` and the bytes of new
blobs) and the diff size: lines added plus removed (``difflib``) for text; a binary file counts 1.
"""

from __future__ import annotations

import difflib
import os
import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from conductor.git.objects import MODE_EXEC, MODE_FILE, MODE_GITLINK, MODE_LINK, Entry, blob_id, read_blobs

MAX_FILE_BYTES = 64 << 20
StatKey = tuple[int, int, int, int, int]  # (mode, size, mtime_ns, ctime_ns, ino)


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class IgnoreRules:
    """The ``.gitignore`` files of a base tree, applied as git does (deeper files win, last pattern wins)."""

    def __init__(self, files: dict[str, str]) -> None:
        # folder ("" for the root) -> spec of the .gitignore in that folder
        self.specs = {posixpath.dirname(path): pathspec.GitIgnoreSpec.from_lines(text.splitlines())
                      for path, text in files.items()}

    @classmethod
    def of_tree(cls, repo: Path, entries: dict[str, Entry]) -> IgnoreRules:
        wanted = {p: e.sha for p, e in entries.items() if posixpath.basename(p) == ".gitignore" and e.kind == "file"}
        blobs = read_blobs(repo, wanted.values())
        return cls({p: blobs.get(sha, b"").decode("utf-8", "replace") for p, sha in wanted.items()})

    def ignored(self, path: str, is_dir: bool) -> bool:
        if not self.specs:
            return False
        folder = posixpath.dirname(path)
        while True:
            spec = self.specs.get(folder)
            if spec is not None:
                rel = path[len(folder) + 1:] if folder else path
                result = spec.check_file(rel + "/" if is_dir else rel)
                if result.include is not None:
                    return bool(result.include)
            if not folder:
                return False
            folder = posixpath.dirname(folder)


@dataclass(frozen=True)
class Node:
    """What is at a path of the working copy now."""

    kind: str  # file | symlink | dir | special
    mode: str = ""  # git mode of a file or symlink
    sha: str = ""  # blob id of the content (file) or target (symlink)
    target: str | None = None


@dataclass
class Scan:
    created: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    mode_changed: list[str] = field(default_factory=list)
    type_changed: list[str] = field(default_factory=list)
    symlinks: dict[str, str] = field(default_factory=dict)  # created or changed symlink -> its target
    special: list[str] = field(default_factory=list)  # FIFOs, sockets, devices
    invalid: list[str] = field(default_factory=list)  # paths git cannot store
    too_large: list[str] = field(default_factory=list)
    entries: dict[str, Entry | None] = field(default_factory=dict)  # applied to the base for the step's commit
    blobs: dict[str, bytes] = field(default_factory=dict, repr=False)  # new blob id -> content
    diff_lines: int = 0
    per_file: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> list[str]:
        return sorted({*self.created, *self.modified, *self.deleted, *self.mode_changed, *self.type_changed})


def _invalid_name(name: str) -> bool:
    return name.lower() == ".git" or "\n" in name or "\0" in name


def _read_regular(full: str, st: os.stat_result) -> bytes | None:
    """The bytes of a regular file, refusing to follow a symlink swapped in since ``lstat``."""
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_ino != st.st_ino:
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class _Walker:
    def __init__(self, root: Path, base: dict[str, Entry], ignore: IgnoreRules, cache: dict[str, StatKey]) -> None:
        self.root = str(root)
        self.base = base
        self.ignore = ignore
        self.cache = cache
        self.base_dirs = {posixpath.dirname(p) for p in base}
        for d in list(self.base_dirs):
            while d:
                d = posixpath.dirname(d)
                self.base_dirs.add(d)
        self.gitlinks = {p for p, e in base.items() if e.mode == MODE_GITLINK}
        self.nodes: dict[str, Node] = {}
        self.contents: dict[str, bytes] = {}
        self.scan = Scan()

    def walk(self, rel_dir: str = "") -> None:
        full_dir = os.path.join(self.root, rel_dir) if rel_dir else self.root
        try:
            entries = list(os.scandir(full_dir))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        for entry in sorted(entries, key=lambda e: e.name):
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if not rel_dir and entry.name == ".git":
                continue  # the attempt's own repository: not evidence
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            tracked = rel in self.base or rel in self.base_dirs
            if stat.S_ISDIR(st.st_mode):
                if rel in self.gitlinks:
                    continue  # a submodule's folder: its content is another repository's
                if not tracked and self.ignore.ignored(rel, True):
                    continue
                if _invalid_name(entry.name):
                    self.scan.invalid.append(rel)
                    continue
                self.nodes[rel] = Node("dir")
                self.walk(rel)
                continue
            if not tracked and self.ignore.ignored(rel, False):
                continue
            if _invalid_name(entry.name):
                self.scan.invalid.append(rel)
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(entry.path)
                self.nodes[rel] = Node("symlink", MODE_LINK, blob_id(target.encode("utf-8", "surrogateescape")),
                                       target)
            elif stat.S_ISREG(st.st_mode):
                mode = MODE_EXEC if st.st_mode & 0o111 else MODE_FILE
                base = self.base.get(rel)
                if base is not None and base.mode == mode and self.cache.get(rel) == stat_key(st):
                    self.nodes[rel] = Node("file", mode, base.sha)  # untouched since checkout
                    continue
                if st.st_size > MAX_FILE_BYTES:
                    self.scan.too_large.append(rel)
                    self.nodes[rel] = Node("file", mode, f"too-large:{st.st_size}")
                    continue
                data = _read_regular(entry.path, st)
                if data is None:
                    self.scan.special.append(rel)
                    continue
                sha = blob_id(data)
                self.nodes[rel] = Node("file", mode, sha)
                if base is None or base.sha != sha:
                    self.contents[rel] = data
            else:
                self.scan.special.append(rel)


def scan(workspace: Path, repo: Path, base: dict[str, Entry], ignore: IgnoreRules,
         cache: dict[str, StatKey] | None = None) -> Scan:
    """Compare the working copy ``workspace`` with ``base`` (the entries of the commit it was handed)."""
    walker = _Walker(Path(workspace), base, ignore, cache or {})
    walker.walk()
    result, nodes = walker.scan, walker.nodes
    for path, entry in base.items():
        if entry.mode == MODE_GITLINK:
            continue
        node = nodes.get(path)
        if node is None or node.kind == "dir":
            if node is not None:
                result.type_changed.append(path)
            elif not any(path == s or path.startswith(s + "/") for s in result.special + result.invalid):
                result.deleted.append(path)
            result.entries[path] = None
            continue
        base_kind = "symlink" if entry.mode == MODE_LINK else "file"
        if node.kind != base_kind:
            result.type_changed.append(path)
        elif node.sha != entry.sha:
            result.modified.append(path)
        elif node.mode != entry.mode:
            result.mode_changed.append(path)
        else:
            continue
        result.entries[path] = Entry(node.mode, node.sha)
        if node.kind == "symlink":
            result.symlinks[path] = node.target or ""
    for path, node in nodes.items():
        if node.kind == "dir" or path in base:
            continue
        result.created.append(path)
        result.entries[path] = Entry(node.mode, node.sha)
        if node.kind == "symlink":
            result.symlinks[path] = node.target or ""
    for path, data in walker.contents.items():
        result.blobs[nodes[path].sha] = data
    for path, node in nodes.items():
        if node.kind == "symlink" and path in result.entries:
            result.blobs[node.sha] = (node.target or "").encode("utf-8", "surrogateescape")
    _count(result, repo, base, walker.contents)
    for name in ("created", "modified", "deleted", "mode_changed", "type_changed", "special", "invalid"):
        getattr(result, name).sort()
    return result


def _count(result: Scan, repo: Path, base: dict[str, Entry], contents: dict[str, bytes]) -> None:
    touched = [p for p in (*result.created, *result.modified, *result.deleted, *result.type_changed)]
    old_shas = {base[p].sha for p in touched if p in base and base[p].mode != MODE_GITLINK}
    old = read_blobs(repo, old_shas) if old_shas else {}
    for path in touched:
        before = old.get(base[path].sha) if path in base else None
        entry = result.entries.get(path)
        if entry is None:
            after = None
        elif entry.mode == MODE_LINK:
            after = result.blobs.get(entry.sha)
        else:
            after = contents.get(path)
            if after is None:
                result.per_file[path] = 1  # too large to read: counted as one change
                continue
        result.per_file[path] = count_diff_lines(before, after)
    for path in result.mode_changed:
        result.per_file.setdefault(path, 0)
    result.diff_lines = sum(result.per_file.values())


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


def stat_cache(workspace: Path, paths: Iterable[str]) -> dict[str, StatKey]:
    """``lstat`` of each path right after checkout (what :func:`scan` may trust as untouched)."""
    cache: dict[str, StatKey] = {}
    root = str(workspace)
    for rel in paths:
        try:
            st = os.lstat(os.path.join(root, rel))
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            cache[rel] = stat_key(st)
    return cache


def symlink_escapes(path: str, target: str, workspace: Path) -> bool:
    """Whether a symlink at ``path`` with ``target`` resolves outside ``workspace`` (lexically or really)."""
    if os.path.isabs(target):
        return True
    lexical = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if lexical == ".." or lexical.startswith("../"):
        return True
    real = os.path.realpath(os.path.join(workspace, path))
    root = os.path.realpath(workspace)
    return not (real == root or real.startswith(root + os.sep))
