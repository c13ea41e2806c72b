"""Merge rules, Project → Plan → Step: lists accumulate, limits only tighten unless a level
says allow_loosen, a protection is dropped only by unprotect, and every value has an origin."""

from __future__ import annotations

from conductor.contract.policy import ALWAYS_PROTECTED
from conductor.policy import merge
from conductor.policy.levels import PolicyLevel
from conductor.validation import validate_document


def level(text: str, name: str = "project", file: str = "policy.yaml") -> PolicyLevel:
    doc, diags = validate_document(text, "policy")
    assert not diags, diags
    return PolicyLevel.from_document(doc, name, file)  # type: ignore[arg-type]


PROJECT = """\
global_constraints:
  - Never modify files in /core
file_rules:
  protected_patterns: ['*.lock', 'migrations/*']
behavior:
  max_diff_lines: 500
  timeout_seconds: 300
verification:
  - name: tests
    run: pytest -q
"""


def test_defaults_apply_when_nothing_is_set():
    eff = merge([])
    assert eff.limit("max_diff_lines") == 500
    assert eff.limits["max_diff_lines"].origin.level == "default"


def test_every_effective_value_records_file_and_line():
    eff = merge([level(PROJECT)])
    assert eff.limits["max_diff_lines"].origin.line == 6
    assert eff.limits["timeout_seconds"].origin.line == 7
    assert [(s.value, s.origin.line) for s in eff.protected_patterns] == [
        (".conductor/**", None), (".git/**", None), ("*.lock", 4), ("migrations/*", 4)]
    assert eff.global_constraints[0].origin.line == 2
    assert eff.limits["max_repairs"].origin.level == "default"


def test_lists_accumulate_across_levels():
    plan = level(
        "global_constraints: [Always add tests]\nfile_rules:\n  protected_patterns: ['docs/**']\n", "plan", "plan.json"
    )
    eff = merge([level(PROJECT), plan])
    assert eff.constraints == ["Never modify files in /core", "Always add tests"]
    assert eff.protected == [*ALWAYS_PROTECTED, "*.lock", "migrations/*", "docs/**"]
    assert eff.protected_patterns[4].origin.level == "plan"


def test_a_later_level_tightens_a_limit_freely():
    eff = merge([level(PROJECT), level("behavior:\n  max_diff_lines: 100\n", "step")])
    assert eff.limit("max_diff_lines") == 100
    assert eff.limits["max_diff_lines"].origin.level == "step"
    assert eff.refusals == []


def test_a_later_level_cannot_loosen_a_limit_silently():
    eff = merge([level(PROJECT), level("behavior:\n  max_diff_lines: 5000\n", "plan", "plan.json")])
    assert eff.limit("max_diff_lines") == 500
    assert eff.limits["max_diff_lines"].origin.level == "project"
    (refusal,) = eff.refusals
    assert refusal.key == "behavior.max_diff_lines" and refusal.origin.file == "plan.json"
    assert "allow_loosen" in refusal.message


def test_loosening_works_when_said_explicitly():
    plan = level("behavior:\n  max_diff_lines: 5000\n  allow_loosen: [max_diff_lines]\n", "plan")
    eff = merge([level(PROJECT), plan])
    assert eff.limit("max_diff_lines") == 5000 and eff.refusals == []


def test_lowering_the_approval_threshold_is_loosening():
    strict = level("behavior:\n  approval_below: 0.6\n")
    eff = merge([strict, level("behavior:\n  approval_below: 0.2\n", "plan")])
    assert eff.limit("approval_below") == 0.6 and eff.refusals
    eff = merge([strict, level("behavior:\n  approval_below: 0.7\n", "plan")])
    assert eff.limit("approval_below") == 0.7 and not eff.refusals


def test_a_protection_is_dropped_only_by_unprotect_and_the_release_is_recorded():
    plan = level("file_rules:\n  unprotect: ['migrations/*']\n", "plan", "plan.json")
    eff = merge([level(PROJECT), plan])
    assert eff.protected == [*ALWAYS_PROTECTED, "*.lock"]
    assert [(s.value, s.origin.file, s.origin.line) for s in eff.released_patterns] == [
        ("migrations/*", "plan.json", 2)
    ]


def test_unprotecting_something_never_protected_is_reported():
    eff = merge([level(PROJECT), level("file_rules:\n  unprotect: ['nothing/*']\n", "plan")])
    assert eff.protected == [*ALWAYS_PROTECTED, "*.lock", "migrations/*"]
    assert eff.refusals[0].key == "file_rules.unprotect"


def test_a_verification_command_cannot_be_replaced_silently():
    eff = merge([level(PROJECT), level("verification:\n  - name: tests\n    run: 'true'\n", "step")])
    assert [c.run for c in eff.commands] == ["pytest -q"]
    assert eff.refusals[0].key == "verification"


def test_confidence_levels_follow_the_thresholds():
    eff = merge([level("behavior:\n  approval_below: 0.4\n  caution_below: 0.9\n")])
    assert [eff.confidence_level(s) for s in (0.39, 0.4, 0.89, 0.9)] == ["low", "medium", "medium", "high"]


def test_conductor_records_and_the_repository_are_always_protected_and_cannot_be_released():
    release = level("file_rules:\n  unprotect: ['.conductor/**', '.git/**']\n", "plan", "plan.json")
    eff = merge([level(PROJECT), release])
    assert eff.protected[:2] == [".conductor/**", ".git/**"]
    assert [r.message for r in eff.refusals] == ["`.conductor/**` is always protected", "`.git/**` is always protected"]


AGENT_PLAN = """\
file_rules:
  unprotect: ['*.lock']
  protected_patterns: ['docs/**']
behavior:
  max_diff_lines: 100000
  timeout_seconds: 30
  allow_loosen: [max_diff_lines]
"""


def test_a_level_written_by_an_agent_may_tighten_but_only_asks_to_loosen():
    plan = level(AGENT_PLAN, "plan", "plan.json")
    plan.by_agent = True
    eff = merge([level(PROJECT), plan])
    assert "*.lock" in eff.protected and "docs/**" in eff.protected
    assert eff.limit("max_diff_lines") == 500 and eff.limit("timeout_seconds") == 30
    assert [(r.key, r.message) for r in eff.requested] == [
        ("file_rules.unprotect", "release protected pattern `*.lock`"),
        ("behavior.max_diff_lines", "max_diff_lines 500 → 100000"),
    ]
    approved = merge([level(PROJECT), plan], trust_agents=True)
    assert "*.lock" not in approved.protected and approved.limit("max_diff_lines") == 100000
    assert approved.requested == []


def test_a_plan_written_by_an_agent_only_asks_to_pass_a_secret_to_verification():
    text = "verification:\n  - {name: deploy check, run: ./check, pass_env: [DEPLOY_TOKEN]}\n"
    plan = level(text, "plan", "plan.json")
    plan.by_agent = True
    eff = merge([level(PROJECT), plan])
    assert "deploy check" not in [c.name for c in eff.commands]
    assert [r.message for r in eff.requested] == ["pass DEPLOY_TOKEN to verification `deploy check`"]
    assert "deploy check" in [c.name for c in merge([level(PROJECT), plan], trust_agents=True).commands]
