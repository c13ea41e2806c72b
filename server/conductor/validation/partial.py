"""The usable part of a document that has errors: what can still be computed, and what blocks the rest.

A policy with one bad value still says a lot: every other limit, pattern and constraint is
known. :func:`usable_part` removes exactly the nodes that carry an error (the entry with the
bad glob, the value of the wrong type, the mapping that lacks a required key) and keeps every
position of what remains, so the effective policy can be computed from the rest and each
value still points at its line; and it says which error blocks which path.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from conductor.validation.diagnostics import Diagnostic, Severity
from conductor.validation.document import JsonPath, NodeRanges, ParsedDocument

Blocked = list[tuple[JsonPath, Diagnostic]]


def blocker(blocked: Blocked, path: JsonPath) -> Diagnostic | None:
    """The error that makes the node at ``path`` (or one of its ancestors) unusable."""
    for where, diagnostic in blocked:
        if path[: len(where)] == where:
            return diagnostic
    return None


def usable_part(doc: ParsedDocument, diagnostics: list[Diagnostic]) -> tuple[ParsedDocument | None, Blocked]:
    """``doc`` without its erroneous nodes (``None`` when nothing is usable), and the errors by path."""
    if not isinstance(doc.data, dict):
        return None, [((), d) for d in diagnostics if d.severity == Severity.ERROR]
    blocked: Blocked = []
    for diagnostic in diagnostics:
        if diagnostic.severity != Severity.ERROR:
            continue
        found = doc.path_at(diagnostic.range.start_line, diagnostic.range.start_character)
        if found is None or not found[0]:
            return None, [((), diagnostic)]
        blocked.append((found[0], diagnostic))
    data = copy.deepcopy(doc.data)
    nodes = dict(doc.nodes)
    paths = {path for path, _ in blocked}
    # deepest first, and within one list the highest index first, so earlier removals never
    # move what is still to be removed
    for path in sorted(paths, key=lambda p: (len(p), p[-1] if isinstance(p[-1], int) else -1), reverse=True):
        _remove(data, nodes, path)
    return dataclasses.replace(doc, data=data, nodes=nodes, diagnostics=[]), blocked


def _remove(data: Any, nodes: dict[JsonPath, NodeRanges], path: JsonPath) -> None:
    parent = data
    for part in path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    present = (isinstance(parent, dict) and last in parent) or (
        isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent))
    if not present:
        return
    del parent[last]
    depth = len(path)
    for key in [k for k in nodes if k[:depth] == path]:
        del nodes[key]
    if isinstance(last, int):  # later items of the list move up by one; keep their positions
        base = path[:-1]
        moved: list[tuple[int, JsonPath]] = []
        for key in nodes:
            index = key[depth - 1] if len(key) >= depth and key[: depth - 1] == base else None
            if isinstance(index, int) and index > last:
                moved.append((index, key))
        for index, key in sorted(moved, key=lambda m: m[0]):
            nodes[(*base, index - 1, *key[depth:])] = nodes.pop(key)
