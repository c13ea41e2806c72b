"""Document symbols: the outline of policy, config and plan documents (steps by id and title)."""

from __future__ import annotations

from typing import Any

from lsprotocol import types as lsp

from conductor.lsp.documents import Analysis
from conductor.lsp.positions import Lines
from conductor.validation.diagnostics import Range
from conductor.validation.document import JsonPath

MAX_SYMBOLS = 2000


def _extent(analysis: Analysis, path: JsonPath, ends: dict[JsonPath, Range]) -> Range:
    ranges = analysis.doc.nodes[path]
    start = ranges.key or ranges.value
    end = ends.get(path, ranges.value)
    if (end.end_line, end.end_character) < (start.end_line, start.end_character):
        end = start
    return Range(start.start_line, start.start_character, end.end_line, end.end_character)


def _last_ranges(analysis: Analysis, depth: int) -> dict[JsonPath, Range]:
    """For each path up to ``depth``, the range of its last descendant (so blocks span their lines)."""
    ends: dict[JsonPath, Range] = {}
    for path, ranges in analysis.doc.nodes.items():
        rng = ranges.value
        for n in range(1, min(len(path), depth) + 1):
            prefix = path[:n]
            current = ends.get(prefix)
            if current is None or (rng.end_line, rng.end_character) > (current.end_line, current.end_character):
                ends[prefix] = rng
    return ends


def _kind(value: Any) -> lsp.SymbolKind:
    if isinstance(value, dict):
        return lsp.SymbolKind.Object
    if isinstance(value, list):
        return lsp.SymbolKind.Array
    if isinstance(value, bool):
        return lsp.SymbolKind.Boolean
    if isinstance(value, int | float):
        return lsp.SymbolKind.Number
    return lsp.SymbolKind.String


def document_symbols(analysis: Analysis, lines: Lines) -> list[lsp.DocumentSymbol]:
    data = analysis.doc.data
    if not isinstance(data, dict) or not analysis.doc.nodes:
        return []
    depth = 4
    ends = _last_ranges(analysis, depth)
    count = 0

    def build(path: JsonPath, value: Any, level: int) -> lsp.DocumentSymbol | None:
        nonlocal count
        if path not in analysis.doc.nodes or count >= MAX_SYMBOLS:
            return None
        count += 1
        name = str(path[-1])
        detail = None
        if analysis.kind == "plan" and len(path) == 2 and path[0] == "steps" and isinstance(value, dict):
            name = str(value.get("id", name))
            detail = str(value.get("title", ""))
        elif not isinstance(value, dict | list):
            detail = str(value)[:80]
        elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            detail = ", ".join(str(v) for v in value)[:80]
        full = lines.range(_extent(analysis, path, ends))
        ranges = analysis.doc.nodes[path]
        selection = lines.range(ranges.key or ranges.value)
        children: list[lsp.DocumentSymbol] = []
        if level < depth:
            items = value.items() if isinstance(value, dict) else (
                enumerate(value) if isinstance(value, list) and any(isinstance(v, dict) for v in value) else [])
            for key, child in items:
                symbol = build((*path, key), child, level + 1)
                if symbol is not None:
                    children.append(symbol)
        return lsp.DocumentSymbol(name=name or "·", kind=_kind(value), range=full, selection_range=selection,
                                  detail=detail, children=children or None)

    out = []
    for key, value in data.items():
        symbol = build((key,), value, 1)
        if symbol is not None:
            out.append(symbol)
    return out


def flatten(symbols: list[lsp.DocumentSymbol], uri: str, container: str | None = None
            ) -> list[lsp.SymbolInformation]:
    """Flat SymbolInformation for clients without hierarchical symbol support."""
    out = []
    for s in symbols:
        out.append(lsp.SymbolInformation(name=s.name, kind=s.kind, location=lsp.Location(uri=uri, range=s.range),
                                         container_name=container))
        out.extend(flatten(list(s.children or []), uri, s.name))
    return out
