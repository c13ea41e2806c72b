"""Glob patterns for protected files and allowed files, and what makes a pattern invalid.

Protected patterns use gitignore semantics (pathspec's ``GitIgnoreSpec``): ``*.lock``
matches at any depth, ``migrations/*`` everything under ``migrations/``, a leading ``/``
anchors at the workspace root. Allowed files are always anchored at the root: an entry
``hello.py`` allows ``hello.py``, not ``src/hello.py``; globs (``src/**/*.py``) work too.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from functools import lru_cache

import pathspec
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern


@lru_cache(maxsize=4096)
def _spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(patterns)


@lru_cache(maxsize=65536)
def glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable glob, or ``None`` when it is fine."""
    if not pattern.strip():
        return "pattern is empty"
    if pattern != pattern.strip():
        return "pattern has leading or trailing spaces"
    if "\\" in pattern:
        return "backslashes are not path separators here; use `/`"
    depth = 0
    for ch in pattern:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
    if depth:
        return "unclosed `[` character class"
    for segment in pattern.strip("/").split("/"):
        if "**" in segment and segment != "**":
            return f"`**` must be a whole path segment (`a/**/b`), not part of `{segment}`"
        if segment == "..":
            return "`..` segments are not allowed in patterns"
    try:
        GitIgnoreSpecPattern.pattern_to_regex(pattern)  # parse only; compiling 5,000 patterns is slow
    except Exception as exc:  # pathspec raises its own error types for malformed patterns
        return f"not a valid pattern: {exc}"
    return None


def normalize(path: str) -> str:
    """Workspace-relative POSIX form of a path (``./a//b`` → ``a/b``)."""
    return posixpath.normpath(path.replace("\\", "/")).lstrip("/") if path not in ("", ".") else ""


def matches_protected(path: str, patterns: Iterable[str]) -> str | None:
    """The first protected pattern ``path`` matches, or ``None``."""
    rel = normalize(path)
    for pattern in patterns:
        if glob_problem(pattern) is None and _spec((pattern,)).match_file(rel):
            return pattern
    return None


def matches_allowed(path: str, allowed: Iterable[str]) -> bool:
    """Whether ``path`` is one of the allowed entries (anchored at the workspace root)."""
    rel = normalize(path)
    anchored = tuple("/" + normalize(a) for a in allowed if a.strip())
    return bool(anchored) and _spec(anchored).match_file(rel)


def path_problem(entry: str) -> tuple[str, str] | None:
    """(code, reason) when an ``allowed_files`` entry is absolute or leaves the workspace."""
    if entry.startswith("/") or (len(entry) > 1 and entry[1] == ":") or entry.startswith("~"):
        return "path-absolute", f"`{entry}` is absolute; allowed files are relative to the workspace"
    parts = entry.replace("\\", "/").split("/")
    if ".." in parts:
        resolved = posixpath.normpath(entry)
        if resolved == ".." or resolved.startswith("../"):
            return "path-escapes", f"`{entry}` leads outside the workspace"
        return "path-parent", f"`{entry}` contains `..`; write it as `{resolved}`"
    return None
