"""Hostile documents get one clear diagnostic instead of hanging or exhausting memory.

How fast each one is answered is measured in bench/bench_validation.py, not asserted here.
"""

from __future__ import annotations

import yaml

from conductor.validation import validate_document
from conductor.validation.document import _depth_bound
from conductor.validation.limits import MAX_BYTES, MAX_DEPTH


def codes(text: str, kind: str = "policy") -> list[str]:
    return [d.code for d in validate_document(text, kind)[1]]


def test_a_ten_megabyte_file_is_refused_without_parsing():
    text = "global_constraints:\n" + "  - " + "x" * (10 * 1024 * 1024) + "\n"
    assert len(text) > MAX_BYTES
    doc, diags = validate_document(text, "policy")
    assert [d.code for d in diags] == ["file/too-large"]
    assert "10.0 MiB" in diags[0].message
    assert doc.data is None


def test_a_billion_laughs_alias_bomb_is_refused():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    assert codes("\n".join(lines) + "\n") == ["yaml/alias-expansion"]


def test_a_few_harmless_aliases_are_fine():
    text = "global_constraints: &c\n  - be kind\nfile_rules:\n  protected_patterns: *c\n"
    assert codes(text) == []


def test_deep_yaml_nesting_is_refused_before_composing():
    assert codes("global_constraints: " + "[" * 100_000 + "]" * 100_000) == ["yaml/too-deep"]


def test_deep_json_nesting_is_refused():
    assert codes('{"allowed_files": ' + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "}", "task") == [
        "json/too-deep"
    ]
    assert codes('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "task") == ["json/too-deep"]


def test_binary_content_is_named_as_such():
    assert codes("behavior:\n  max_diff_lines: 5\n\x00\x00\x00") == ["file/binary"]


def test_empty_and_comment_only_files():
    assert codes("") == ["file/empty"]
    assert codes("   \n\n") == ["file/empty"]
    assert codes("# only a comment\n") == ["file/empty"]
    assert codes("", "task") == ["file/empty"]


def test_a_limit_beyond_what_every_json_reader_holds_exactly_is_refused():
    """Tasks carry the limits and are checksummed with RFC 8785, which only takes integers up to 2^53."""
    assert codes("behavior:\n  max_diff_lines: 10000000000000000\n") == ["policy/range"]
    assert codes("behavior:\n  max_files_changed: 100000000000\n") == ["policy/range"]


def _depth(node: object) -> int:
    """Nesting depth of composed YAML (a scalar is 0, each collection adds 1)."""
    if isinstance(node, yaml.CollectionNode):
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        return 1 + max((_depth(c) for c in children), default=0)
    return 0


def _nested(depth: int, style: int) -> str:
    """A document nested ``depth`` deep in one of several block, compact and flow styles."""
    value: object = "leaf"
    for level in range(depth):
        value = [value] if (level + style) % 3 else {f"k{level}": value}
    return yaml.safe_dump({"root": value}, default_flow_style=None if style % 2 else False, indent=2 + style % 3)


def test_the_cheap_depth_bound_is_never_below_the_real_depth():
    """The parser walk is skipped only under a bound computed from the characters: it must hold
    for block, compact (``- - x``), key-then-sequence and flow nesting alike."""
    samples = [_nested(depth, style) for depth in (1, 2, 5, 20, 63, 64, 65, 90) for style in range(6)]
    samples += ["- - - - - - x\n", "a:\n- b:\n  - c:\n    - d\n", "{a: [b, {c: [d, [e]]}]}\n",
                "? [a, [b]]\n: x\n", "a: -1\nb: x:y\n", "- a: 1\n  b:\n  - - 2\n"]
    for text in samples:
        assert _depth(yaml.compose(text)) <= _depth_bound(text), text


def test_deep_block_nesting_without_anchors_is_still_refused():
    text = "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_DEPTH + 5)) + f"{'  ' * (MAX_DEPTH + 5)}v\n"
    assert codes(text) == ["yaml/too-deep"]
    compact = "global_constraints:\n  " + "- " * (MAX_DEPTH + 5) + "x\n"
    assert codes(compact) == ["yaml/too-deep"]
