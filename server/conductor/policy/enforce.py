"""Applies the effective policy to concrete paths and changes.

The handoff verifier and the llm executor call these before accepting any change; the
validator calls them on task files. Each check returns violations, never raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from conductor.contract.globs import matches_allowed, matches_protected, normalize, path_problem
from conductor.policy.merge import EffectivePolicy


@dataclass(frozen=True)
class PolicyViolation:
    code: str
    message: str
    path: str | None = None


def is_path_allowed(path: str, allowed_files: list[str], policy: EffectivePolicy) -> PolicyViolation | None:
    """``None`` when a step with ``allowed_files`` may change ``path`` under ``policy``."""
    problem = path_problem(path)
    if problem:
        return PolicyViolation(f"evidence/{problem[0]}", problem[1], path)
    rel = normalize(path)
    pattern = matches_protected(rel, policy.protected)
    if pattern is not None:
        return PolicyViolation("evidence/protected-file", f"{rel} matches protected pattern `{pattern}`", rel)
    if not matches_allowed(rel, allowed_files):
        return PolicyViolation("evidence/outside-allowed-files", f"{rel} changed but is not in allowed_files", rel)
    return None


def check_changes(
    changed: list[str],
    diff_lines: int,
    allowed_files: list[str],
    policy: EffectivePolicy,
    max_diff_lines: int | None = None,
) -> list[PolicyViolation]:
    """Every violation a set of changed files and a diff size commit against ``policy``."""
    found = [v for p in sorted(changed) if (v := is_path_allowed(p, allowed_files, policy))]
    limit = max_diff_lines if max_diff_lines is not None else policy.limit("max_diff_lines")
    if diff_lines > limit:
        found.append(PolicyViolation("evidence/diff-too-large", f"{diff_lines} lines changed; the limit is {limit}"))
    max_files = policy.limit("max_files_changed")
    if len(changed) > max_files:
        found.append(
            PolicyViolation("evidence/too-many-files", f"{len(changed)} files changed; the limit is {max_files}")
        )
    return found
