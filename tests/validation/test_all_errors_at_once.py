"""All errors at once: semantic checks run on every node that parsed, whatever else is broken.

A user who fixes the schema errors of a policy must not then discover a second round of
pattern typos; and a syntax error points where the user must act (the opening quote of an
unterminated string), not where the scanner gave up.
"""

from __future__ import annotations

import json

import pytest

from conductor.policy import merge
from conductor.policy.levels import PolicyLevel
from conductor.validation import validate_document
from conductor.validation.partial import blocker, usable_part

POLICY_WITH_FOUR_ERRORS = """\
file_rules:
  protected_patterns:
    - "[.env"
    - "src/**.py"
    - "../secrets/*"
behavior:
  max_diff_lines: -5
"""


def test_one_schema_error_and_three_pattern_typos_are_four_diagnostics_at_once() -> None:
    _doc, diagnostics = validate_document(POLICY_WITH_FOUR_ERRORS, "policy", path=".conductor/policy.yaml")
    found = sorted((d.range.start_line + 1, d.code) for d in diagnostics)
    assert found == [
        (3, "policy/invalid-glob"),
        (4, "policy/invalid-glob"),
        (5, "policy/invalid-glob"),
        (7, "policy/range"),
    ]
    by_line = {d.range.start_line + 1: d.message for d in diagnostics}
    assert "[.env" in by_line[3] and "src/**.py" in by_line[4] and "../secrets/*" in by_line[5]


def test_a_node_of_the_wrong_shape_is_reported_once_by_the_schema_and_the_rest_still_checked() -> None:
    text = 'file_rules:\n  protected_patterns: [42, "[oops"]\n  unprotect: "*.lock"\nbehavior: {approval_below: "x"}\n'
    _doc, diagnostics = validate_document(text, "policy", path=".conductor/policy.yaml")
    codes = sorted(d.code for d in diagnostics)
    assert codes == ["policy/invalid-glob", "policy/type", "policy/type", "policy/type"], diagnostics
    assert len({d.range for d in diagnostics}) == len(diagnostics)  # nothing reported twice


def test_a_task_with_a_missing_key_still_gets_its_path_problems() -> None:
    task = {"contract_version": "1.0", "task_id": "step_001", "instruction": "x",
            "allowed_files": ["/etc/passwd", "../up.py"]}
    _doc, diagnostics = validate_document(json.dumps(task, indent=2), "task", path="step_001.task.json")
    codes = {d.code for d in diagnostics}
    assert "task/missing-key" in codes
    assert {"task/path-absolute", "task/path-escapes"} <= codes, codes


@pytest.mark.parametrize("document", [
    {"steps": "not a list", "goal": 3},
    {"steps": [1, None, {"id": 5}, {"id": "step_001", "allowed_files": "x", "depends_on": [None, "step_009"]}]},
    {"policy": {"file_rules": [], "behavior": None, "verification": [1, {"name": None}]}, "steps": []},
])
def test_plan_rules_survive_any_shape(document: dict) -> None:
    _doc, diagnostics = validate_document(json.dumps(document), "plan", path="main.plan.json")
    assert diagnostics  # the schema says what is wrong; the rules neither crash nor repeat it
    assert len({(d.range, d.code, d.message) for d in diagnostics}) == len(diagnostics)


def test_an_unterminated_quote_is_reported_at_its_opening_quote() -> None:
    text = 'global_constraints:\n  - "Never touch /core\nbehavior:\n  max_diff_lines: 10\n'
    _doc, diagnostics = validate_document(text, "policy", path=".conductor/policy.yaml")
    assert [d.code for d in diagnostics] == ["yaml/syntax"]
    rng = diagnostics[0].range
    assert (rng.start_line, rng.start_character) == (1, 4)  # the `"` the user must close
    assert "never closed" in diagnostics[0].message and "end of the file" in diagnostics[0].message


def test_an_unclosed_bracket_is_reported_at_the_bracket() -> None:
    text = "file_rules:\n  protected_patterns: [\"a\", \"b\"\nbehavior:\n  max_diff_lines: 10\n"
    _doc, diagnostics = validate_document(text, "policy", path=".conductor/policy.yaml")
    rng = diagnostics[0].range
    assert (rng.start_line, rng.start_character) == (1, 22) and "`[` is never closed" in diagnostics[0].message


POLICY_WITH_ERRORS_AMONG_GOOD_VALUES = """\
global_constraints:
  - Keep it small
  - 5
  - Be kind
file_rules:
  protected_patterns:
    - "[.env"
    - "*.lock"
    - "migrations/*"
behavior:
  max_diff_lines: 300
  timeout_seconds: 0
"""


def test_the_usable_part_of_a_policy_with_errors_keeps_every_good_value_at_its_line() -> None:
    doc, diagnostics = validate_document(POLICY_WITH_ERRORS_AMONG_GOOD_VALUES, "policy", path=".conductor/policy.yaml")
    usable, blocked = usable_part(doc, diagnostics)
    assert usable is not None
    assert usable.data == {"global_constraints": ["Keep it small", "Be kind"],
                           "file_rules": {"protected_patterns": ["*.lock", "migrations/*"]},
                           "behavior": {"max_diff_lines": 300}}
    policy = merge([PolicyLevel.from_document(usable, "project", "policy.yaml")])
    origins = {s.value: s.origin.line for s in [*policy.global_constraints, *policy.protected_patterns]}
    assert origins["Be kind"] == 4 and origins["migrations/*"] == 9  # positions survive the removals
    assert policy.limits["max_diff_lines"].value == 300 and policy.limits["max_diff_lines"].origin.line == 11
    stop = blocker(blocked, ("behavior", "timeout_seconds"))
    assert stop is not None and stop.code == "policy/range"
    assert blocker(blocked, ("behavior", "max_diff_lines")) is None


def test_nothing_is_usable_when_the_document_did_not_parse() -> None:
    doc, diagnostics = validate_document('a: "open\n', "policy", path=".conductor/policy.yaml")
    usable, blocked = usable_part(doc, diagnostics)
    assert usable is None and blocked and blocked[0][1].code == "yaml/syntax"
