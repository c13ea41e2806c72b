"""Parses YAML and JSON documents into plain data plus the source range of every node.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two duplicate
keys; here the document is composed into nodes (C loader when present), checked against
hostile input first (size, binary content, nesting depth, alias expansion), and converted
to data while recording, for every JSON path, the range of its key and of its value.
JSON is first checked by ``json`` (exact syntax errors), then composed the same way
because JSON is YAML for positions.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from conductor.validation import limits
from conductor.validation.diagnostics import START, Diagnostic, Range, Severity

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Syntax = Literal["yaml", "json"]
JsonPath = tuple[str | int, ...]


@dataclass
class NodeRanges:
    value: Range
    key: Range | None = None


@dataclass
class ParsedDocument:
    """The data of a document and where each part of it is in the text."""

    text: str
    syntax: Syntax
    data: Any = None
    ok: bool = False
    nodes: dict[JsonPath, NodeRanges] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def value_range(self, path: JsonPath) -> Range:
        """Range of the value at ``path``, or of its closest existing ancestor."""
        while path not in self.nodes and path:
            path = path[:-1]
        ranges = self.nodes.get(path)
        return ranges.value if ranges else START

    def key_range(self, path: JsonPath) -> Range:
        """Range of the key naming ``path`` (the value's range for list items and the root)."""
        while path not in self.nodes and path:
            path = path[:-1]
        ranges = self.nodes.get(path)
        if ranges is None or not path:
            return self.first_line()
        return ranges.key or ranges.value

    def first_line(self) -> Range:
        """The first line with content: where a problem of the whole document is shown."""
        for number, line in enumerate(self.text.splitlines()):
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                start = len(line) - len(line.lstrip())
                return Range(number, start, number, len(line.rstrip()))
        return START

    def path_at(self, line: int, character: int) -> tuple[JsonPath, bool] | None:
        """The deepest node under a position, and whether the position is on its key."""
        best: tuple[JsonPath, bool] | None = None
        best_len = -1
        for path, ranges in self.nodes.items():
            for on_key, rng in ((True, ranges.key), (False, ranges.value)):
                if rng is not None and _contains(rng, line, character) and len(path) > best_len:
                    best, best_len = (path, on_key), len(path)
        return best


def _contains(rng: Range, line: int, character: int) -> bool:
    start = (rng.start_line, rng.start_character)
    end = (rng.end_line, rng.end_character)
    return start <= (line, character) <= end


def _mark_range(node: yaml.Node, lines: list[str] | None = None) -> Range:
    start, end = node.start_mark, node.end_mark
    if (
        end.line > start.line
        and isinstance(node, yaml.CollectionNode)
        and (end.column == 0 or node.flow_style is False)
    ):
        # A block collection spans many lines: show it on its first line only.
        width = len(lines[start.line].rstrip()) if lines and start.line < len(lines) else start.column
        return Range(start.line, start.column, start.line, max(width, start.column))
    return Range(start.line, start.column, end.line, end.column)


def _error(code: str, message: str, rng: Range = START, **data: Any) -> Diagnostic:
    return Diagnostic(rng, Severity.ERROR, code, message, dict(data))


def _mark_point(mark: Any) -> Range:
    if mark is None:
        return START
    return Range(mark.line, mark.column, mark.line, mark.column + 1)


OPENERS = ("while scanning a quoted scalar", "while parsing a flow sequence", "while parsing a flow mapping",
           "while scanning a block scalar")
"""Parser contexts whose start (the quote, ``[`` or ``{``) is where the user must act."""


def _syntax_error(exc: yaml.MarkedYAMLError, syntax: Syntax) -> Diagnostic:
    """A syntax error where the user must act.

    The scanner notices an unterminated quote (or an unclosed ``[``/``{``) only where it gives
    up, often at the end of the file; the parser's context mark is the opening character, so
    the diagnostic goes there and says where the scanner stopped.
    """
    problem = (exc.problem or str(exc)).strip()
    context = (exc.context or "").strip()
    start, stop = exc.context_mark, exc.problem_mark
    if (start is not None and stop is not None and context.startswith(OPENERS)
            and (stop.line, stop.column) != (start.line, start.column)):
        what = {
            "while scanning a quoted scalar": "this quoted string is never closed",
            "while parsing a flow sequence": "this `[` is never closed",
            "while parsing a flow mapping": "this `{` is never closed",
            "while scanning a block scalar": "this block scalar is malformed",
        }[next(o for o in OPENERS if context.startswith(o))]
        if "end of stream" in problem:
            message = f"invalid {syntax.upper()}: {what} (it runs on to the end of the file)"
        else:
            message = f"invalid {syntax.upper()}: {what} ({problem} at line {stop.line + 1})"
        return _error(f"{syntax}/syntax", message, _mark_point(start))
    suffix = f" ({context})" if context and syntax == "yaml" else ""
    return _error(f"{syntax}/syntax", f"invalid {syntax.upper()}: {problem}{suffix}", _mark_point(exc.problem_mark))


def parse(text: str, syntax: Syntax) -> ParsedDocument:
    """Parse ``text``; problems become diagnostics on the returned document, never exceptions."""
    doc = ParsedDocument(text=text, syntax=syntax)
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > limits.MAX_BYTES:
        doc.diagnostics.append(
            _error(
                "file/too-large",
                f"file is {size / 1_048_576:.1f} MiB; Conductor documents are limited to "
                f"{limits.MAX_BYTES // 1_048_576} MiB and this one was not parsed",
                size=size,
            )
        )
        return doc
    if "\x00" in text or "\ufffd" in text[:8192]:
        offset = text.find("\x00") if "\x00" in text else text.find("\ufffd")
        line = text.count("\n", 0, offset)
        col = offset - (text.rfind("\n", 0, offset) + 1)
        doc.diagnostics.append(
            _error(
                "file/binary",
                "file holds binary content (a NUL byte or invalid UTF-8), not text",
                Range(line, col, line, col + 1),
            )
        )
        return doc
    if not _has_content(text, syntax):
        doc.diagnostics.append(_error("file/empty", "file is empty: expected a mapping of keys"))
        return doc
    if syntax == "json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            rng = Range(exc.lineno - 1, exc.colno - 1, exc.lineno - 1, exc.colno)
            doc.diagnostics.append(_error("json/syntax", f"invalid JSON: {exc.msg}", rng))
            return doc
        except RecursionError:
            doc.diagnostics.append(_error("json/too-deep", f"nesting is deeper than {limits.MAX_DEPTH} levels"))
            return doc
    scan = _prescan(doc)
    if scan is None:
        return doc
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        doc.diagnostics.append(_syntax_error(exc, syntax))
        return doc
    except yaml.YAMLError as exc:
        doc.diagnostics.append(_error(f"{syntax}/syntax", f"invalid {syntax.upper()}: {exc}"))
        return doc
    except RecursionError:
        doc.diagnostics.append(_error(f"{syntax}/too-deep", f"nesting is deeper than {limits.MAX_DEPTH} levels"))
        return doc
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        doc.diagnostics.append(_error("file/empty", "file is empty: expected a mapping of keys"))
        return doc
    if len(nodes) > 1:
        doc.diagnostics.append(
            _error(
                "yaml/multiple-documents",
                "only one YAML document is allowed; found another one here",
                _mark_range(nodes[1], text.splitlines()),
            )
        )
        return doc
    root = nodes[0]
    lines = text.splitlines()
    expanded = _expanded_size(root) if scan.aliases else 0  # without aliases nothing expands
    if expanded > limits.MAX_NODES:
        doc.diagnostics.append(
            _error(
                f"{syntax}/alias-expansion",
                f"aliases expand this document to more than {limits.MAX_NODES:,} nodes "
                "(a 'billion laughs' alias bomb?); it was not read",
                _mark_range(root, lines),
            )
        )
        return doc
    converter = _Converter(doc)
    doc.data = converter.convert(root, ())
    if not isinstance(root, yaml.MappingNode):
        doc.diagnostics.append(
            _error(
                "file/not-mapping",
                f"the top level must be a mapping of keys, not a {_type_name(doc.data)}",
                _mark_range(root, lines),
            )
        )
        return doc
    doc.ok = not any(d.severity == Severity.ERROR for d in doc.diagnostics)
    return doc


def _has_content(text: str, syntax: Syntax) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not (syntax == "yaml" and (stripped.startswith("#") or stripped in ("---", "..."))):
            return True
    return False


@dataclass
class _Scan:
    aliases: int = 0


def _depth_bound(text: str) -> int:
    """An upper bound of the nesting depth of ``text``, from its characters alone (no parsing).

    A block collection nested in another is indented further, or starts on its parent's line
    after an indicator (``-``, ``?``, ``:``), or is the sequence value of a key at the key's own
    indentation; a flow collection opens with ``[`` or ``{``. So the depth is at most twice
    (the deepest indentation + 1), plus the most indicators on one line, plus every ``[`` and ``{``.
    """
    indent = indicators = 0
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        indent = max(indent, len(line) - len(stripped))
        indicators = max(indicators, stripped.count("-") + stripped.count(":") + stripped.count("?"))
    return 2 * (indent + 1) + indicators + text.count("[") + text.count("{")


def _prescan(doc: ParsedDocument) -> _Scan | None:
    """Walk parser events (iterative, cheap) to refuse excessive nesting before composing.

    ``None`` when the document must not be composed; otherwise what the walk saw. The walk is
    skipped when the text cannot hold what it looks for: no anchor (``&``; an alias without
    one is a syntax error compose reports) and a depth bound (:func:`_depth_bound`) within
    the limit. That is every real document, and it halves the cost of parsing a large one.
    """
    if "&" not in doc.text and _depth_bound(doc.text) <= limits.MAX_DEPTH:
        return _Scan()
    depth = 0
    scan = _Scan()
    try:
        for event in yaml.parse(doc.text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                scan.aliases += 1
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limits.MAX_DEPTH:
                    doc.diagnostics.append(
                        _error(
                            f"{doc.syntax}/too-deep",
                            f"nesting is deeper than {limits.MAX_DEPTH} levels; the document was not read",
                            _mark_point(event.start_mark),
                        )
                    )
                    return None
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" in str(exc.problem):
            doc.diagnostics.append(
                _error(
                    f"{doc.syntax}/too-deep",
                    f"nesting is deeper than {limits.MAX_DEPTH} levels; the document was not read",
                    _mark_point(exc.problem_mark),
                )
            )
            return None
        return scan  # compose reports the syntax error with its position
    except yaml.YAMLError:
        return scan
    return scan


def _expanded_size(root: yaml.Node) -> int:
    """Nodes the document has once every alias is expanded (memoized: linear in real nodes)."""
    memo: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in memo:
            continue
        children = _children(node)
        if children_done or not children:
            total = 1 + sum(memo.get(id(c), 1) for c in children)
            memo[id(node)] = min(total, limits.MAX_NODES + 1)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in memo)
    return memo[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _type_name(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "value")


class _Converter:
    def __init__(self, doc: ParsedDocument) -> None:
        self.doc = doc
        self.lines = doc.text.splitlines()
        self.constructor = yaml.constructor.SafeConstructor()

    def convert(self, node: yaml.Node, path: JsonPath, key: Range | None = None) -> Any:
        self.doc.nodes[path] = NodeRanges(value=_mark_range(node, self.lines), key=key)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            seen: dict[str, Range] = {}
            for key_node, value_node in node.value:
                key_range = _mark_range(key_node)
                if not isinstance(key_node, yaml.ScalarNode):
                    self.doc.diagnostics.append(
                        _error(f"{self.doc.syntax}/complex-key", "keys must be plain strings", key_range)
                    )
                    continue
                name = str(self.scalar(key_node))
                if name in seen:
                    first = seen[name]
                    self.doc.diagnostics.append(
                        _error(
                            f"{self.doc.syntax}/duplicate-key",
                            f"duplicate key `{name}` (first defined on line {first.start_line + 1}); "
                            "only one value would be kept",
                            key_range,
                            key=name,
                            first_line=first.start_line,
                        )
                    )
                    continue
                seen[name] = key_range
                result[name] = self.convert(value_node, (*path, name), key_range)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        if node.tag == "tag:yaml.org,2002:str":
            return node.value  # what the constructor returns for a plain string, without its overhead
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.doc.diagnostics.append(
                _error(f"{self.doc.syntax}/syntax", f"unreadable value: {exc}", _mark_range(node))
            )
            return None
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        if isinstance(value, float) and value != value:  # NaN is not JSON
            return str(node.value)
        return value
