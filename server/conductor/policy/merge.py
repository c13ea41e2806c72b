"""Merges policy levels Project → Plan → Step into the effective policy, with origins.

The rules (also in the README, "Policy merge rules"):

* ``global_constraints`` and ``verification`` commands **accumulate**; duplicates are kept once.
* ``file_rules.protected_patterns`` **accumulate**. A later level drops an earlier pattern
  only by naming it in ``file_rules.unprotect``; the release is recorded with its line.
* Every ``behavior`` limit is an upper bound. A later level may **tighten** it freely; it may
  **loosen** it only when it lists the limit's name in ``behavior.allow_loosen``. A looser
  value without that is refused: the earlier value stays and a refusal is reported.
  ``approval_below``, ``caution_below`` and ``fork_below`` are thresholds where *lower* is looser;
  ``allow_symlinks``, ``network`` (``deny`` is tighter than ``allow``) and ``sandbox``
  (``required`` tighter than ``auto`` tighter than ``off``) follow the same rule by rank.
* Values not set at any level come from the built-in defaults (origin ``default``).
* ``.conductor/**`` and ``.git/**`` are always protected; no level can release them.
* Only a person loosens policy: a level written by an agent or a model (``by_agent``: the plan
  and step levels of a plan that came from a planning agent or the model) may tighten, but its
  ``allow_loosen`` and ``unprotect`` are not honoured. What it asked for is kept in
  ``EffectivePolicy.requested`` (shown to the person who approves), and honoured only when
  :func:`merge` is called with ``trust_agents=True`` (after ``conductor approve``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from conductor.contract.policy import ALWAYS_PROTECTED, DEFAULTS, VerificationCommand
from conductor.policy.levels import PolicyLevel
from conductor.policy.origin import DEFAULT, Origin

LOWER_IS_LOOSER = frozenset({"approval_below", "caution_below", "fork_below"})
RANKED: dict[str, tuple[Any, ...]] = {
    "allow_symlinks": (False, True),
    "network": ("deny", "allow"),
    "sandbox": ("required", "auto", "off"),
}
"""Limits that are not numbers: their values from tightest to loosest."""
BUILT_IN = Origin("default", "built-in: Conductor's records and the repository are always protected")


def is_looser(name: str, new: Any, current: Any) -> bool:
    if name in RANKED:
        order = RANKED[name]
        return order.index(new) > order.index(current) if new in order and current in order else False
    return bool(new < current) if name in LOWER_IS_LOOSER else bool(new > current)


class Sourced(NamedTuple):
    """A value and where it came from (a named tuple: cheap to create by the hundred thousand)."""

    value: Any
    origin: Origin

    def plain(self) -> Any:
        return self.value.model_dump() if isinstance(self.value, VerificationCommand) else self.value

    def to_json(self) -> dict[str, Any]:
        return {"value": self.plain(), "origin": self.origin.to_json()}


@dataclass(frozen=True)
class Refusal:
    """A later level tried to loosen or release something without saying so explicitly."""

    key: str
    message: str
    origin: Origin

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "message": self.message, "origin": self.origin.to_json()}


@dataclass
class EffectivePolicy:
    global_constraints: list[Sourced] = field(default_factory=list)
    protected_patterns: list[Sourced] = field(default_factory=list)
    released_patterns: list[Sourced] = field(default_factory=list)
    limits: dict[str, Sourced] = field(default_factory=dict)
    verification: list[Sourced] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    requested: list[Refusal] = field(default_factory=list)  # loosenings an agent-written level asked for

    def limit(self, name: str) -> Any:
        return self.limits[name].value

    @property
    def constraints(self) -> list[str]:
        return [s.value for s in self.global_constraints]

    @property
    def protected(self) -> list[str]:
        return [s.value for s in self.protected_patterns]

    @property
    def commands(self) -> list[VerificationCommand]:
        return [s.value for s in self.verification]

    def confidence_level(self, score: float) -> str:
        if score < self.limit("approval_below"):
            return "low"
        if score < self.limit("caution_below"):
            return "medium"
        return "high"

    def to_json(self, show_origin: bool = True) -> dict[str, Any]:
        def out(s: Sourced) -> Any:
            return s.to_json() if show_origin else s.plain()

        return {
            "global_constraints": [out(s) for s in self.global_constraints],
            "file_rules": {
                "protected_patterns": [out(s) for s in self.protected_patterns],
                "released_patterns": [out(s) for s in self.released_patterns],
            },
            "behavior": {name: out(s) for name, s in self.limits.items()},
            "verification": [out(s) for s in self.verification],
            "refusals": [r.to_json() for r in self.refusals],
            "requested_loosening": [r.to_json() for r in self.requested],
        }


def merge(levels: list[PolicyLevel], *, trust_agents: bool = False) -> EffectivePolicy:
    """The effective policy of ``levels`` in order (earliest first); see the module docstring.

    Linear in the total size of the levels: membership is kept in dictionaries, never checked
    against a list (a policy may carry a hundred thousand constraints).
    """
    eff = EffectivePolicy(limits={name: Sourced(value, DEFAULT) for name, value in DEFAULTS.items()})
    constraints: dict[str, Sourced] = {}
    protected: dict[str, Sourced] = {p: Sourced(p, BUILT_IN) for p in ALWAYS_PROTECTED}
    verification: dict[str, Sourced] = {}
    set_by_level: set[str] = set()
    for index, level in enumerate(levels):
        policy = level.policy
        held = level.by_agent and not trust_agents
        for i, text in enumerate(policy.global_constraints):
            if text not in constraints:
                constraints[text] = Sourced(text, level.origin("global_constraints", i))

        for i, pattern in enumerate(policy.file_rules.unprotect):
            origin = level.origin("file_rules", "unprotect", i)
            if pattern in ALWAYS_PROTECTED:
                eff.refusals.append(Refusal("file_rules.unprotect", f"`{pattern}` is always protected", origin))
                continue
            if held:
                if pattern in protected:
                    eff.requested.append(Refusal("file_rules.unprotect", f"release protected pattern `{pattern}`",
                                                 origin))
                continue
            if protected.pop(pattern, None) is not None:
                eff.released_patterns.append(Sourced(pattern, origin))
            else:
                eff.refusals.append(
                    Refusal("file_rules.unprotect", f"`{pattern}` is not protected by an earlier level", origin)
                )
        for i, pattern in enumerate(policy.file_rules.protected_patterns):
            if pattern not in protected:
                protected[pattern] = Sourced(pattern, level.origin("file_rules", "protected_patterns", i))

        allowed_loosen = set(policy.behavior.allow_loosen)
        for name in DEFAULTS:
            new = getattr(policy.behavior, name)
            if new is None:
                continue
            origin = level.origin("behavior", name)
            current = eff.limits[name]
            looser = is_looser(name, new, current.value)
            if held and looser:
                eff.requested.append(Refusal(f"behavior.{name}", f"{name} {current.value} → {new}", origin))
                continue
            if index > 0 and name in set_by_level and looser and name not in allowed_loosen:
                eff.refusals.append(
                    Refusal(
                        f"behavior.{name}",
                        f"{name} {new} would loosen {current.value} set at {current.origin}; "
                        f"kept {current.value} (add `{name}` to behavior.allow_loosen to allow it)",
                        origin,
                    )
                )
                continue
            eff.limits[name] = Sourced(new, origin)
            set_by_level.add(name)

        for i, command in enumerate(policy.verification):
            origin = level.origin("verification", i)
            if held and command.pass_env:
                eff.requested.append(Refusal("verification", f"pass {', '.join(command.pass_env)} to verification "
                                             f"`{command.name}`", origin))
                continue
            existing = verification.get(command.name)
            if existing is not None and existing.value != command and held:
                eff.requested.append(Refusal("verification", f"replace verification `{command.name}`", origin))
                continue
            if existing is not None and existing.value != command and "verification" not in allowed_loosen:
                eff.refusals.append(
                    Refusal(
                        "verification",
                        f"verification `{command.name}` is already defined at "
                        f"{existing.origin}; kept it (add `verification` to behavior.allow_loosen "
                        "to replace it)",
                        origin,
                    )
                )
                continue
            verification.pop(command.name, None)  # a replacement moves to the end, as it is applied last
            verification[command.name] = Sourced(command, origin)
    eff.global_constraints = list(constraints.values())
    eff.protected_patterns = list(protected.values())
    eff.verification = list(verification.values())
    return eff
