"""Confidence: explainable factors, documented weights, thresholds — and it learns from history."""

from __future__ import annotations

from pathlib import Path

import pathspec
import pytest

from conductor.confidence import DEFAULT_WEIGHTS, StepToScore, score_step
from conductor.contract.plan import PlanStep
from conductor.contract.task import Confidence
from conductor.history import HistoryStore

PROTECTED = pathspec.PathSpec.from_lines("gitignore", ["*.lock", ".github/**", "migrations/*"])


def is_protected(path: str) -> bool:
    return PROTECTED.match_file(path)


def factors(confidence: Confidence) -> dict[str, float]:
    return {f.name: f.value for f in confidence.factors}


def test_a_small_fresh_step_is_high_with_four_named_factors_whose_weights_sum_to_one() -> None:
    step = PlanStep(id="step_001", title="t", instruction="Create hello.py", allowed_files=["hello.py"])
    confidence = score_step(step, is_protected=is_protected)

    assert [f.name for f in confidence.factors] == ["history", "policy_risk", "scope", "planner"]
    assert sum(f.weight for f in confidence.factors) == pytest.approx(1.0)
    assert {f.name: f.weight for f in confidence.factors} == pytest.approx(dict(DEFAULT_WEIGHTS))
    assert confidence.score == pytest.approx(0.35 * 0.7 + 0.25 * 1 + 0.2 * 1 + 0.2 * 0.7)
    assert confidence.level == "high"
    assert all(f.detail for f in confidence.factors)


def test_levels_follow_the_thresholds_passed_in() -> None:
    step = StepToScore(instruction="Create hello.py", allowed_files=["hello.py"], estimated_confidence=0.9)
    assert score_step(step).level == "high"
    assert score_step(step, caution_below=0.95).level == "medium"
    assert score_step(step, approval_below=0.9, caution_below=0.95).level == "low"
    with pytest.raises(ValueError, match="approval_below ≤ caution_below"):
        score_step(step, approval_below=0.9, caution_below=0.5)


def test_broad_scope_lowers_confidence() -> None:
    narrow = score_step(StepToScore("Refactor", ["src/a.py"]))
    several = score_step(StepToScore("Refactor", ["src/a.py", "src/b.py", "src/c.py", "src/d.py"]))
    everything = score_step(StepToScore("Refactor", ["src/**"]))
    assert factors(narrow)["scope"] > factors(several)["scope"] > factors(everything)["scope"]
    assert narrow.score > several.score > everything.score


def test_a_protected_allowed_file_always_asks_for_approval() -> None:
    confidence = score_step(
        StepToScore("Bump dependencies", ["poetry.lock"], estimated_confidence=1.0), is_protected=is_protected
    )
    assert factors(confidence)["policy_risk"] == 0.0
    assert confidence.level == "low"
    assert "poetry.lock" in confidence.factors[1].detail


def test_a_glob_that_can_reach_protected_files_is_risky_but_not_blocked() -> None:
    confidence = score_step(StepToScore("Tidy the repo", ["src/*", "*"]), is_protected=is_protected)
    assert factors(confidence)["policy_risk"] == pytest.approx(0.3)
    assert "can reach protected files" in confidence.factors[1].detail


def test_the_planners_estimate_counts() -> None:
    unsure = score_step(StepToScore("Do it", ["a.py"], estimated_confidence=0.1))
    sure = score_step(StepToScore("Do it", ["a.py"], estimated_confidence=0.95))
    assert sure.score - unsure.score == pytest.approx(0.2 * 0.85, abs=1e-3)


def test_it_learns_a_repeated_failure_lowers_confidence_and_repair_offers_the_past_fix(tmp_path: Path) -> None:
    step = PlanStep(
        id="step_004",
        title="Users table",
        instruction="Add the users table to the SQLAlchemy models and create it in the schema setup",
        allowed_files=["app/models.py", "app/db.py"],
    )
    with HistoryStore(tmp_path / "history.db") as history:
        before = score_step(step, history=history, is_protected=is_protected)
        assert before.level == "high" and "no similar steps" in before.factors[0].detail

        # The same kind of step failed three times in earlier plans, the same way…
        for plan in ("p1", "p2", "p3"):
            history.record_outcome(
                plan_id=plan,
                step_id="step_002",
                instruction="Add the orders table to the SQLAlchemy models and create it in the schema setup",
                allowed_files=["app/models.py", "app/db.py"],
                outcome="failed",
                failure_cause="verification_failed",
            )
        # …until a repair that imported the models before create_all() made it pass.
        history.record_repair(
            plan_id="p3",
            step_id="step_002",
            failure_cause="verification_failed",
            original_instruction="Add the orders table to the SQLAlchemy models and create it in the schema setup",
            original_allowed_files=["app/models.py", "app/db.py"],
            evidence_summary="sqlite3.OperationalError: no such table: orders",
            fix_instruction="Import app.models in app/db.py before calling Base.metadata.create_all()",
            fix_allowed_files=["app/models.py", "app/db.py"],
            succeeded=True,
        )

        after = score_step(step, history=history, is_protected=is_protected)
        assert after.score < before.score - 0.15
        assert after.level == "medium"
        assert factors(after)["history"] < 0.3
        assert after.factors[0].detail == "0 of 3 similar steps succeeded (failures: verification_failed ×3)"

        fixes = history.similar_failures_with_fixes(
            step.instruction, step.allowed_files, failure_cause="verification_failed"
        )
        assert fixes and fixes[0].fix_instruction.startswith("Import app.models in app/db.py")
        assert "no such table" in fixes[0].evidence_summary


def test_successes_raise_confidence_above_the_neutral_prior(tmp_path: Path) -> None:
    step = StepToScore("Add a docstring to util.py", ["util.py"])
    with HistoryStore(tmp_path / "history.db") as history:
        neutral = score_step(step, history=history)
        for _ in range(4):
            history.record_outcome(
                instruction="Add a docstring to util.py", allowed_files=["util.py"], outcome="completed"
            )
        learned = score_step(step, history=history)
    assert factors(learned)["history"] > factors(neutral)["history"] == pytest.approx(0.7)
    assert learned.score > neutral.score


def test_weights_can_be_tuned_and_are_normalized() -> None:
    step = StepToScore("Do it", ["a.py"], estimated_confidence=0.2)
    only_planner = score_step(step, weights={"planner": 2.0})
    assert only_planner.score == pytest.approx(0.2)
    with pytest.raises(ValueError, match="unknown confidence factors"):
        score_step(step, weights={"vibes": 1.0})
