"""The policy engine: owns reading policy levels (project file, editor buffer, plan and step blocks),
merging them Project → Plan → Step with the origin of every value, and enforcing the result
on concrete changes. Glob semantics live in :mod:`conductor.contract.globs` (validation uses
them too); validation sits below this package and never imports it.
"""

from __future__ import annotations

from pathlib import Path

from conductor.policy.enforce import PolicyViolation, check_changes, is_path_allowed
from conductor.policy.levels import PolicyError, PolicyLevel, level_from_text, load_policy_file, plan_levels
from conductor.policy.merge import EffectivePolicy, Refusal, Sourced, merge
from conductor.policy.origin import Origin
from conductor.project.layout import ProjectLayout
from conductor.validation import ValidationContext

__all__ = [
    "EffectivePolicy",
    "Origin",
    "PolicyError",
    "PolicyLevel",
    "PolicyViolation",
    "Refusal",
    "Sourced",
    "check_changes",
    "is_path_allowed",
    "level_from_text",
    "load_policy_file",
    "load_project_policy",
    "merge",
    "plan_levels",
    "validation_context",
]


def load_project_policy(root: str | Path) -> EffectivePolicy:
    """Effective project-level policy of the project at ``root`` (defaults when no file)."""
    layout = ProjectLayout.at(root)
    level = load_policy_file(layout.policy_file, display=layout.policy_display)
    return merge([level] if level else [])


def validation_context(policy: EffectivePolicy | None, path: Path | None = None) -> ValidationContext:
    """What task and plan rules need of a policy: its protections and confidence thresholds."""
    if policy is None:
        return ValidationContext(path=path)
    return ValidationContext(protected_patterns=tuple(policy.protected), approval_below=policy.limit("approval_below"),
                             caution_below=policy.limit("caution_below"), path=path)
