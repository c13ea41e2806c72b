"""The parser keeps the source range of every key and value, counted in code points."""

from __future__ import annotations

from conductor.validation import validate_document
from conductor.validation.document import parse


def test_ranges_of_keys_and_values_in_yaml():
    doc = parse("behavior:\n  max_diff_lines: 50\n", "yaml")
    ranges = doc.nodes[("behavior", "max_diff_lines")]
    assert ranges.key is not None
    assert (ranges.key.start_line, ranges.key.start_character, ranges.key.end_character) == (1, 2, 16)
    assert (ranges.value.start_line, ranges.value.start_character, ranges.value.end_character) == (1, 18, 20)


def test_columns_after_emoji_and_cjk_are_code_points():
    text = 'global_constraints: ["😀", "日本語"]\nbehavior: {timeout_seconds: 5, max_dif_lines: 3}\n'
    _, diags = validate_document(text, "policy")
    assert [d.code for d in diags] == ["policy/unknown-key"]
    assert diags[0].range.start_line == 1
    assert text.splitlines()[1][diags[0].range.start_character : diags[0].range.end_character] == "max_dif_lines"
    same_line = 'global_constraints: ["😀😀"]\nfile_rules: {protected_patterns: ["日本", "[x"]}\n'
    _, diags = validate_document(same_line, "policy")
    line = same_line.splitlines()[1]
    assert line[diags[0].range.start_character : diags[0].range.end_character] == '"[x"'


def test_path_at_finds_the_deepest_key_under_a_position():
    doc = parse("file_rules:\n  protected_patterns:\n    - '*.lock'\n", "yaml")
    assert doc.path_at(1, 5) == (("file_rules", "protected_patterns"), True)
    assert doc.path_at(2, 8) == (("file_rules", "protected_patterns", 0), False)


def test_duplicate_keys_are_reported_with_the_first_line():
    _, diags = validate_document('{"task_id": "step_001",\n "task_id": "step_002"}', "task")
    dup = [d for d in diags if d.code == "json/duplicate-key"]
    assert dup and dup[0].range.start_line == 1 and "line 1" in dup[0].message


def test_a_missing_key_in_a_nested_mapping_points_at_its_parent_key():
    _, diags = validate_document("behavior:\n  max_diff_lines: 5\nverification:\n  - name: t\n", "policy")
    assert [(d.code, d.range.start_line, d.range.start_character) for d in diags] == [("policy/missing-key", 3, 4)]


def test_near_miss_suggestion_is_carried_in_data_for_quick_fixes():
    _, diags = validate_document("behavior:\n  max_dif_lines: 5\n", "policy")
    assert diags[0].data == {"key": "max_dif_lines", "suggestion": "max_diff_lines"}


def test_a_secret_value_is_never_echoed():
    secret = "sk-live-DO-NOT-PRINT-1234567890"
    _, diags = validate_document(f"llm:\n  api_key: {secret}\n", "config")
    assert diags and all(secret not in d.message and secret not in str(d.data) for d in diags)
