"""The policy engine: load levels, merge them with origins, enforce the result."""

from conductor.policy.enforce import PolicyViolation, check_changes, is_path_allowed
from conductor.policy.levels import PolicyError, PolicyLevel, load_policy_file
from conductor.policy.merge import EffectivePolicy, Refusal, Sourced, merge
from conductor.policy.origin import Origin

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
    "load_policy_file",
    "load_project_policy",
    "merge",
]


def load_project_policy(root: object) -> EffectivePolicy:
    """Effective project-level policy of the project at ``root`` (defaults when no file)."""
    from pathlib import Path

    from conductor.project.layout import ProjectLayout

    layout = ProjectLayout.at(Path(str(root)))
    level = load_policy_file(layout.policy_file, display=".conductor/policy.yaml")
    return merge([level] if level else [])
