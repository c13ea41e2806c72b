"""Hostile documents get one clear diagnostic instead of hanging or exhausting memory.

How fast each one is answered is measured in bench/bench_validation.py, not asserted here.
"""

from __future__ import annotations

from conductor.validation import validate_document
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
