"""Scores a finished fork from its evidence so `explore` can pick a winner, and shows the parts.

score = 0.35·verification + 0.25·tests + 0.15·repairs + 0.15·confidence + 0.10·diff size,
each part in [0, 1]:

* verification: share of steps whose verdict passed;
* tests: share of verification-command runs (all steps) that exited 0 (1.0 when none ran);
* repairs: 1 / (1 + repairs needed);
* confidence: mean pre-execution confidence of the steps;
* diff size: 1 / (1 + lines changed / 200), smaller diffs preferred.

A fork with a failed or skipped step cannot win (its score is reported, but it is not eligible).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WEIGHTS = {"verification": 0.35, "tests": 0.25, "repairs": 0.15, "confidence": 0.15, "diff_size": 0.10}


@dataclass
class ForkScore:
    fork_id: str
    score: float
    parts: dict[str, dict[str, Any]]
    eligible: bool

    def to_json(self) -> dict[str, Any]:
        return {"fork_id": self.fork_id, "score": self.score, "parts": self.parts, "eligible": self.eligible}


def score_fork(fork_id: str, steps: list[Any], diff_lines: int) -> ForkScore:
    """Score from the projected steps of a fork (``StepState`` objects) and its total diff."""
    total = len(steps) or 1
    passed = sum(1 for s in steps if s.verdict == "pass" and s.state == "completed")
    runs = [c for s in steps for c in ((s.evidence or {}).get("verification") or [])]
    tests = (sum(1 for c in runs if c.get("exit_code") == 0) / len(runs)) if runs else 1.0
    repairs = sum(len(s.repairs) for s in steps)
    confidences = [float((s.confidence or {}).get("score", 0.5)) for s in steps]
    values = {
        "verification": passed / total,
        "tests": tests,
        "repairs": 1 / (1 + repairs),
        "confidence": sum(confidences) / len(confidences) if confidences else 0.5,
        "diff_size": 1 / (1 + diff_lines / 200),
    }
    details = {
        "verification": f"{passed} of {len(steps)} steps passed verification",
        "tests": f"{sum(1 for c in runs if c.get('exit_code') == 0)} of {len(runs)} verification runs passed"
        if runs else "no verification commands ran",
        "repairs": f"{repairs} repair(s) needed",
        "confidence": f"mean confidence {values['confidence']:.2f}",
        "diff_size": f"{diff_lines} lines changed",
    }
    parts = {
        name: {"value": round(values[name], 4), "weight": weight, "detail": details[name]}
        for name, weight in WEIGHTS.items()
    }
    score = round(sum(values[n] * w for n, w in WEIGHTS.items()), 4)
    eligible = bool(steps) and all(s.state == "completed" for s in steps)
    return ForkScore(fork_id, score, parts, eligible)


def pick_winner(scores: list[ForkScore]) -> ForkScore | None:
    """The eligible fork with the highest score (ties: the first fork)."""
    eligible = [s for s in scores if s.eligible]
    return max(eligible, key=lambda s: s.score) if eligible else None
