"""`behavior.network` and `behavior.sandbox` in policy: defaults, merge (tighter wins), what the sandbox reads."""

from __future__ import annotations

from typing import Any

import pytest

from conductor.contract.policy import Policy
from conductor.policy import merge
from conductor.policy.levels import PolicyLevel
from conductor.sandbox import SandboxSettings
from conductor.validation import validate_document


def level(name: str, **behavior: Any) -> PolicyLevel:
    return PolicyLevel(name, Policy.model_validate({"behavior": behavior}))  # type: ignore[arg-type]


def test_the_defaults_are_network_allow_and_sandbox_auto() -> None:
    effective = merge([])
    assert (effective.limit("network"), effective.limit("sandbox")) == ("allow", "auto")
    assert SandboxSettings.from_policy(effective) == SandboxSettings(mode="auto", network="allow")


@pytest.mark.parametrize(("key", "project", "later", "kept"), [
    ("network", "allow", "deny", "deny"),
    ("network", "deny", "allow", "deny"),
    ("sandbox", "auto", "required", "required"),
    ("sandbox", "required", "auto", "required"),
    ("sandbox", "required", "off", "required"),
    ("sandbox", "auto", "off", "auto"),
    ("sandbox", "off", "auto", "auto"),
])
def test_a_later_level_may_tighten_but_not_loosen_without_allow_loosen(key: str, project: str, later: str,
                                                                       kept: str) -> None:
    effective = merge([level("project", **{key: project}), level("plan", **{key: later})])
    assert effective.limit(key) == kept
    loosened = kept != later
    assert bool([r for r in effective.refusals if r.key == f"behavior.{key}"]) == loosened


def test_allow_loosen_lets_a_level_loosen_the_sandbox() -> None:
    effective = merge([level("project", sandbox="required"),
                       level("plan", sandbox="auto", allow_loosen=["sandbox"])])
    assert effective.limit("sandbox") == "auto" and effective.refusals == []


def test_the_sandbox_settings_follow_the_effective_policy() -> None:
    effective = merge([level("project", network="deny", sandbox="required")])
    assert SandboxSettings.from_policy(effective) == SandboxSettings(mode="required", network="deny")


def test_a_misspelled_value_is_a_diagnostic_naming_the_choices() -> None:
    _doc, diagnostics = validate_document("behavior:\n  network: block\n  sandbox: always\n", "policy",
                                          path="policy.yaml")
    messages = [d.message for d in diagnostics]
    assert any("allow" in m and "deny" in m for m in messages), messages
    assert any("required" in m for m in messages), messages
