"""Pre-execution confidence: a score in [0, 1] from named factors anyone can read and argue with.

Why it exists: Conductor decides before running a step whether it may run unattended
(``high``), run with caution (``medium``) or must wait for a human (``low``). The decision
must be explainable on hover and in ``conductor explain``, so the score is a weighted mean
of four factors, each with its own value, weight and one-sentence reason:

=============  ======  ===================================================================
factor         weight  value
=============  ======  ===================================================================
history        0.35    similarity-weighted success rate of similar past steps
                       (``history.db``), smoothed towards a neutral prior of 0.7 with the
                       weight of one step: ``(Σ sim·ok + 0.7·1) / (Σ sim + 1)``. With no
                       similar steps the value is the prior.
policy_risk    0.25    1.0 when no allowed path can touch a protected file; 0.3 when a
                       glob in allowed_files can expand onto a protected path; 0.0 when an
                       allowed path is itself protected (then the score is also capped
                       just below the approval threshold: such a step always asks first).
scope          0.20    breadth of allowed_files: each concrete file costs 0.08 after the
                       first, a ``*`` glob counts as 3 files, a ``**`` glob as 8;
                       ``value = 1 / (1 + 0.08·(breadth − 1))``.
planner        0.20    the planner's own ``estimated_confidence``; 0.7 when it gave none.
=============  ======  ===================================================================

Levels: ``score ≥ caution_below`` (default 0.8) → ``high``; ``score ≥ approval_below``
(default 0.5) → ``medium``; below → ``low`` (waits for approval). The policy check takes a
callable ``is_protected(path) -> bool`` so this module does not depend on the policy
engine; the history source is anything with :meth:`success_rate` (a ``HistoryStore``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from conductor.contract.task import Confidence, ConfidenceFactor, ConfidenceLevel
from conductor.history.store import SuccessRate

DEFAULT_WEIGHTS: Mapping[str, float] = {"history": 0.35, "policy_risk": 0.25, "scope": 0.20, "planner": 0.20}
NEUTRAL_PRIOR = 0.7
PRIOR_WEIGHT = 1.0
DEFAULT_APPROVAL_BELOW = 0.5
DEFAULT_CAUTION_BELOW = 0.8
SCOPE_COST_PER_FILE = 0.08
STAR_GLOB_BREADTH = 3
DOUBLE_STAR_GLOB_BREADTH = 8
GLOB_MAY_HIT_PROTECTED = 0.3
# Concrete names a glob is expanded to when probing whether it can reach a protected file.
_PROBE_NAMES = (
    "x", "x.lock", "package-lock.json", "poetry.lock", "uv.lock", "Cargo.lock", ".env", "x.env",
    "secrets.yaml", "x.pem", "x.key", "x.sql", "x.py", "x.yml", "x.yaml", "x.json", "x.md",
    "0001_initial.py", "x/x", "x/x.py", "x/x.lock", "x/x.yml",
)  # fmt: skip


class SuccessHistory(Protocol):
    """The part of :class:`conductor.history.HistoryStore` confidence needs."""

    def success_rate(self, instruction: str, allowed_files: Sequence[str] = ...) -> SuccessRate: ...


@dataclass(frozen=True)
class StepToScore:
    """What confidence looks at (a ``PlanStep`` fits: it has these attributes)."""

    instruction: str
    allowed_files: Sequence[str]
    estimated_confidence: float | None = None


class ScorableStep(Protocol):
    @property
    def instruction(self) -> str: ...

    @property
    def allowed_files(self) -> Sequence[str]: ...

    @property
    def estimated_confidence(self) -> float | None: ...


def level_for(score: float, approval_below: float, caution_below: float) -> ConfidenceLevel:
    if score >= caution_below:
        return "high"
    if score >= approval_below:
        return "medium"
    return "low"


def history_factor(step: ScorableStep, history: SuccessHistory | None, weight: float) -> ConfidenceFactor:
    if history is None:
        return ConfidenceFactor(
            name="history", value=NEUTRAL_PRIOR, weight=weight, detail="no history store: neutral prior"
        )
    rate = history.success_rate(step.instruction, list(step.allowed_files))
    if rate.rate is None:
        return ConfidenceFactor(
            name="history",
            value=NEUTRAL_PRIOR,
            weight=weight,
            detail=f"no similar steps on record: neutral prior {NEUTRAL_PRIOR}",
        )
    value = (rate.rate * rate.weight + NEUTRAL_PRIOR * PRIOR_WEIGHT) / (rate.weight + PRIOR_WEIGHT)
    return ConfidenceFactor(name="history", value=_clamp(value), weight=weight, detail=rate.detail)


def _glob_breadth(pattern: str) -> int:
    if "**" in pattern:
        return DOUBLE_STAR_GLOB_BREADTH
    if any(ch in pattern for ch in "*?["):
        return STAR_GLOB_BREADTH
    return 1


def scope_factor(step: ScorableStep, weight: float) -> ConfidenceFactor:
    files = list(step.allowed_files)
    breadth = max(1, sum(_glob_breadth(p) for p in files))
    value = 1.0 / (1.0 + SCOPE_COST_PER_FILE * (breadth - 1))
    globs = sum(1 for p in files if _glob_breadth(p) > 1)
    detail = f"{len(files)} allowed path{'s' if len(files) != 1 else ''}"
    if globs:
        detail += f", {globs} of them glob{'s' if globs != 1 else ''}"
    return ConfidenceFactor(name="scope", value=_clamp(value), weight=weight, detail=detail)


def _expansions(pattern: str) -> list[str]:
    """Concrete paths a glob could match, used to probe ``is_protected``."""
    if not any(ch in pattern for ch in "*?["):
        return [pattern]
    probes = []
    for name in _PROBE_NAMES:
        candidate = pattern.replace("**", "x/x" if "/" in name else "x")
        candidate = candidate.replace("*", name.rsplit("/", 1)[-1]).replace("?", "x")
        if "[" in candidate:
            continue
        probes.append(candidate)
        if pattern.endswith("/**"):
            probes.append(pattern[: -len("**")] + name)
    return probes


def policy_risk_factor(
    step: ScorableStep, is_protected: Callable[[str], bool] | None, weight: float
) -> tuple[ConfidenceFactor, bool]:
    """The factor, and whether an allowed path is itself protected (which caps the score)."""
    if is_protected is None:
        return (
            ConfidenceFactor(name="policy_risk", value=1.0, weight=weight, detail="no protected patterns given"),
            False,
        )
    direct = [p for p in step.allowed_files if is_protected(p)]
    if direct:
        return (
            ConfidenceFactor(
                name="policy_risk",
                value=0.0,
                weight=weight,
                detail="allowed_files include protected " + ", ".join(direct[:3]),
            ),
            True,
        )
    reachable = []
    for pattern in step.allowed_files:
        hit = next((probe for probe in _expansions(pattern) if is_protected(probe)), None)
        if hit is not None:
            reachable.append(f"{pattern} (e.g. {hit})")
    if reachable:
        return (
            ConfidenceFactor(
                name="policy_risk",
                value=GLOB_MAY_HIT_PROTECTED,
                weight=weight,
                detail="a glob can reach protected files: " + ", ".join(reachable[:3]),
            ),
            False,
        )
    return (
        ConfidenceFactor(
            name="policy_risk", value=1.0, weight=weight, detail="no allowed path touches a protected pattern"
        ),
        False,
    )


def planner_factor(step: ScorableStep, weight: float) -> ConfidenceFactor:
    estimate = step.estimated_confidence
    if estimate is None:
        return ConfidenceFactor(
            name="planner", value=NEUTRAL_PRIOR, weight=weight, detail="the planner gave no estimate"
        )
    return ConfidenceFactor(
        name="planner", value=_clamp(estimate), weight=weight, detail=f"the planner estimated {estimate:.2f}"
    )


def score_step(
    step: ScorableStep,
    *,
    history: SuccessHistory | None = None,
    is_protected: Callable[[str], bool] | None = None,
    approval_below: float = DEFAULT_APPROVAL_BELOW,
    caution_below: float = DEFAULT_CAUTION_BELOW,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> Confidence:
    """Confidence for ``step`` before it runs: score, level, and the factors behind them."""
    if not 0 <= approval_below <= caution_below <= 1:
        raise ValueError(
            f"thresholds must satisfy 0 ≤ approval_below ≤ caution_below ≤ 1 "
            f"(got approval_below={approval_below}, caution_below={caution_below})"
        )
    unknown = set(weights) - set(DEFAULT_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown confidence factors {sorted(unknown)}; known: {sorted(DEFAULT_WEIGHTS)}")
    total = sum(weights.get(name, 0.0) for name in DEFAULT_WEIGHTS)
    if total <= 0:
        raise ValueError("confidence weights must not all be zero")
    normalized = {name: weights.get(name, 0.0) / total for name in DEFAULT_WEIGHTS}
    policy, protected_in_scope = policy_risk_factor(step, is_protected, normalized["policy_risk"])
    factors = [
        history_factor(step, history, normalized["history"]),
        policy,
        scope_factor(step, normalized["scope"]),
        planner_factor(step, normalized["planner"]),
    ]
    score = sum(f.value * f.weight for f in factors)
    if protected_in_scope:
        score = min(score, max(0.0, approval_below - 0.01))
    score = round(_clamp(score), 4)
    return Confidence(score=score, level=level_for(score, approval_below, caution_below), factors=factors)


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, float(value)))
