"""Plan state is a projection of the journal: status, resume, replay to a point, explanations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conductor.journal import Journal, explain_step, project, ready_steps, replay, steps_needing_work

PLAN = {
    "contract_version": "1.0",
    "goal": "Add a greeting CLI",
    "strategy": "minimal",
    "summary": "Script, then tests, then docs.",
    "steps": [
        {
            "id": "step_001",
            "title": "Add hello.py",
            "instruction": "Create hello.py that prints Hello.",
            "allowed_files": ["hello.py"],
            "rationale": "The CLI needs an entry point.",
            "estimated_confidence": 0.9,
        },
        {
            "id": "step_002",
            "title": "Test it",
            "instruction": "Write tests/test_hello.py.",
            "allowed_files": ["tests/test_hello.py"],
            "depends_on": ["step_001"],
            "rationale": "Evidence that the greeting works.",
        },
        {
            "id": "step_003",
            "title": "Touch CI",
            "instruction": "Add a CI workflow.",
            "allowed_files": [".github/workflows/ci.yml"],
            "depends_on": ["step_001"],
            "rationale": "Run tests on push.",
        },
    ],
}
CONFIDENCE = {
    "score": 0.42,
    "level": "low",
    "factors": [
        {"name": "history", "value": 0.2, "weight": 0.35, "detail": "0 of 3 similar steps succeeded"},
        {"name": "policy_risk", "value": 0.0, "weight": 0.25, "detail": "allowed_files include protected .github/**"},
    ],
}


def start(journal: Journal) -> dict[str, int]:
    """plan created, policy, one llm call, planned; returns the seq of notable events."""
    marks = {}
    journal.append("plan.created", goal="Add a greeting CLI", mode="handoff", forks=1, config={"forks": 1})
    journal.append("policy.effective", policy={"behavior": {"max_diff_lines": 200}}, origins={"max_diff_lines": "x:3"})
    journal.append(
        "llm.call",
        purpose="plan",
        request_digest="d" * 64,
        model="m",
        usage={"prompt_tokens": 120, "completion_tokens": 80},
        response_text=json.dumps(PLAN),
    )
    journal.append("plan.planned", fork_id="main", strategy="minimal", plan=PLAN)
    marks["planned"] = journal.append("fork.created", fork_id="main", branch="conductor/main", worktree="/w").seq
    return marks


def run_first_step(journal: Journal) -> int:
    journal.append(
        "step.confidence", fork_id="main", step_id="step_001", confidence={**CONFIDENCE, "score": 0.9, "level": "high"}
    )
    journal.append(
        "step.handed_off",
        fork_id="main",
        step_id="step_001",
        task_path="p/step_001.task.json",
        checksum="sha256:" + "0" * 64,
        attempt=1,
    )
    journal.append("step.claimed", fork_id="main", step_id="step_001", executor="agent@host:1")
    journal.append(
        "step.verified",
        fork_id="main",
        step_id="step_001",
        verdict="pass",
        reason="all checks passed",
        evidence={"files_changed": ["hello.py"]},
        provenance_path="p/step_001.provenance.json",
    )
    return journal.append("step.completed", fork_id="main", step_id="step_001").seq


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.jsonl", plan_id="a1b2c3d4")


def test_a_new_plan_projects_to_pending_steps_with_their_rationale(journal: Journal) -> None:
    start(journal)
    state = project(journal.events())

    assert state.plan_id == "a1b2c3d4" and state.goal == "Add a greeting CLI" and state.status == "running"
    fork = state.forks["main"]
    assert fork.strategy == "minimal" and fork.branch == "conductor/main" and fork.status == "pending"
    assert list(fork.steps) == ["step_001", "step_002", "step_003"]
    assert fork.steps["step_002"].depends_on == ["step_001"]
    assert fork.steps["step_001"].rationale == "The CLI needs an entry point."
    assert state.policy == {"behavior": {"max_diff_lines": 200}}
    assert (state.tokens.calls, state.tokens.prompt_tokens, state.tokens.completion_tokens) == (1, 120, 80)
    assert state.tokens.by_purpose["plan"]["prompt_tokens"] == 120


def test_a_step_runs_through_hand_off_claim_verification_and_completion(journal: Journal) -> None:
    start(journal)
    run_first_step(journal)
    step = project(journal.events()).forks["main"].steps["step_001"]

    assert step.state == "completed" and step.attempts == 1 and step.executor == "agent@host:1"
    assert step.verdict == "pass" and step.provenance_path == "p/step_001.provenance.json"
    assert step.evidence == {"files_changed": ["hello.py"]}
    assert step.confidence is not None and step.confidence["level"] == "high"


def test_failure_repair_and_retry_are_tracked(journal: Journal) -> None:
    start(journal)
    run_first_step(journal)
    journal.append("step.handed_off", fork_id="main", step_id="step_002", task_path="t", checksum="c", attempt=1)
    journal.append(
        "step.verified",
        fork_id="main",
        step_id="step_002",
        verdict="fail",
        reason="pytest failed",
        evidence={"command": "pytest", "exit_code": 1},
        provenance_path="p2",
    )
    journal.append(
        "step.failed", fork_id="main", step_id="step_002", cause="verification_failed", reason="pytest exited 1"
    )
    failed = project(journal.events()).forks["main"].steps["step_002"]
    assert failed.state == "failed" and failed.failure_cause == "verification_failed"

    journal.append(
        "step.repair_planned",
        fork_id="main",
        step_id="step_002",
        attempt=2,
        instruction="Write tests and import hello correctly.",
        allowed_files=["tests/test_hello.py", "tests/__init__.py"],
        similar_fixes=[],
    )
    repaired = project(journal.events()).forks["main"].steps["step_002"]
    assert repaired.state == "pending"
    assert repaired.instruction == "Write tests and import hello correctly."
    assert repaired.repairs[0]["previous_instruction"] == "Write tests/test_hello.py."
    assert repaired.repairs[0]["failure_cause"] == "verification_failed"

    journal.append("step.handed_off", fork_id="main", step_id="step_002", task_path="t", checksum="c", attempt=2)
    journal.append("step.completed", fork_id="main", step_id="step_002")
    done = project(journal.events()).forks["main"].steps["step_002"]
    assert done.state == "completed" and done.attempts == 2 and done.failure_cause is None


def test_low_confidence_waits_for_approval_and_a_rejection_skips_the_step(journal: Journal) -> None:
    start(journal)
    journal.append("step.confidence", fork_id="main", step_id="step_003", confidence=CONFIDENCE)
    journal.append("step.waiting_approval", fork_id="main", step_id="step_003")
    assert project(journal.events()).forks["main"].steps["step_003"].state == "waiting_approval"

    journal.append("step.rejected", fork_id="main", step_id="step_003", by="alice")
    step = project(journal.events()).forks["main"].steps["step_003"]
    assert step.state == "skipped" and step.rejected_by == "alice"


def test_an_approval_releases_the_step(journal: Journal) -> None:
    start(journal)
    journal.append("step.waiting_approval", fork_id="main", step_id="step_003")
    journal.append("step.approved", fork_id="main", step_id="step_003", by="bob")
    step = project(journal.events()).forks["main"].steps["step_003"]
    assert step.state == "pending" and step.approved_by == "bob"


def test_resume_reissues_only_what_is_not_done(journal: Journal) -> None:
    start(journal)
    run_first_step(journal)
    journal.append("plan.halted", reason="interrupted")
    state = project(journal.events())

    assert state.status == "halted" and state.halted_reason == "interrupted"
    assert [s.step_id for s in steps_needing_work(state)] == ["step_002", "step_003"]
    assert [s.step_id for s in ready_steps(state, "main")] == ["step_002", "step_003"]

    journal.append("plan.resumed")
    journal.append("step.rejected", fork_id="main", step_id="step_003", by="alice")
    journal.append("step.completed", fork_id="main", step_id="step_002")
    journal.append("plan.finished", outcome="completed")
    final = project(journal.events())
    assert steps_needing_work(final) == [] and final.status == "finished" and final.outcome == "completed"
    assert final.forks["main"].status == "completed"
    assert final.counts()["completed"] == 2 and final.counts()["skipped"] == 1


def test_replay_to_a_point_shows_the_state_as_it_was_then(journal: Journal) -> None:
    marks = start(journal)
    completed_at = run_first_step(journal)
    journal.append("plan.finished", outcome="completed")

    then = replay(journal, to_seq=marks["planned"])
    assert then.forks["main"].steps["step_001"].state == "pending" and then.status == "running"
    assert then.last_seq == marks["planned"]
    at_completion = replay(journal, to_seq=completed_at)
    assert at_completion.forks["main"].steps["step_001"].state == "completed" and at_completion.status == "running"
    assert replay(journal).status == "finished"
    assert replay(journal).to_dict() == project(journal.events()).to_dict()


def test_fork_scoring_and_merge_are_projected(journal: Journal) -> None:
    start(journal)
    journal.append("fork.scored", fork_id="main", score=0.8, parts={"tests": 1.0})
    journal.append("plan.merged", fork_id="main", branch="conductor/main", commit="abc123")
    state = project(journal.events())
    assert state.forks["main"].score == 0.8
    assert state.merged == {"fork_id": "main", "branch": "conductor/main", "commit": "abc123"}


def test_the_state_is_plain_json(journal: Journal) -> None:
    start(journal)
    run_first_step(journal)
    data = json.loads(json.dumps(project(journal.events()).to_dict()))
    assert data["forks"]["main"]["steps"]["step_001"]["state"] == "completed"
    assert data["tokens"]["total_tokens"] == 200 and data["counts"]["pending"] == 2


def test_unknown_event_types_from_a_newer_writer_are_ignored() -> None:
    state = project(
        [
            {"seq": 0, "type": "plan.created", "data": {"goal": "g", "mode": "llm", "forks": 1, "config": {}}},
            {"seq": 1, "type": "future.thing", "data": {}},
        ]
    )
    assert state.goal == "g" and state.unknown_events == 1


def test_explain_says_why_how_confident_what_happened_and_what_to_do(journal: Journal) -> None:
    start(journal)
    journal.append("step.confidence", fork_id="main", step_id="step_003", confidence=CONFIDENCE)
    journal.append("step.waiting_approval", fork_id="main", step_id="step_003")
    journal.append("step.approved", fork_id="main", step_id="step_003", by="bob")
    journal.append("step.handed_off", fork_id="main", step_id="step_003", task_path="t3", checksum="c", attempt=1)
    journal.append(
        "step.verified",
        fork_id="main",
        step_id="step_003",
        verdict="fail",
        reason="changed a protected file",
        evidence={"protected": [".github/workflows/ci.yml"]},
        provenance_path="p3",
    )
    journal.append(
        "step.failed",
        fork_id="main",
        step_id="step_003",
        cause="protected_file",
        reason=".github/workflows/ci.yml is protected",
    )

    explanation = explain_step(project(journal.events()), "step_003")
    data = explanation.data
    assert data["why_planned"]["rationale"] == "Run tests on push."
    assert data["confidence"]["level"] == "low"
    assert [e["type"] for e in data["what_happened"]] == [
        "plan.planned", "step.confidence", "step.waiting_approval", "step.approved",
        "step.handed_off", "step.verified", "step.failed",
    ]  # fmt: skip
    assert data["failure"]["cause"] == "protected_file" and "unprotect" in data["failure"]["what_to_do"]
    json.dumps(data)

    text = explanation.markdown
    assert text.startswith("# step_003: Touch CI")
    assert "## Why it was planned" in text and "Run tests on push." in text
    assert "| policy_risk | 0.00 | 0.25 | allowed_files include protected .github/** |" in text
    assert "`step.approved` — by=bob" in text
    assert "Cause: `protected_file`" in text and "**What to do:**" in text


def test_explaining_an_unknown_step_names_the_known_ones(journal: Journal) -> None:
    start(journal)
    with pytest.raises(KeyError, match=r"no step 'step_009'.*step_001, step_002, step_003"):
        explain_step(project(journal.events()), "step_009")
