"""The engine sees a person's approval however the journal's appends interleave.

`conductor approve` appends `step.approved` from a process of its own while the engine keeps
journaling the plan's other forks. Whether the approval lands just before one of the engine's
own events, between two of them or after the engine last looked, the engine's state holds it
(and the poll waiting for it returns), and that state is exactly the journal folded afresh.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conductor.contract.task import Confidence
from conductor.engine.runner import PlanRunner, RunOptions
from conductor.journal.projection import replay
from conductor.project.layout import ProjectLayout
from tests.engine.support import conductor, conductor_env, make_project

PLAN = "p0000001"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch) -> PlanRunner:
    for name in ("GEMINI_API_KEY", "CONDUCTOR_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    root = make_project(tmp_path / "proj", "", mode="handoff")
    engine = PlanRunner(ProjectLayout.at(root), PLAN, RunOptions(goal="Add greeting modules"))
    engine.append("plan.created", goal="Add greeting modules", mode="handoff", forks=2, config={})
    return engine


def approve(runner: PlanRunner, fork_id: str) -> None:
    """The person, in a process of their own."""
    done = conductor("approve", "step_001", "--fork", fork_id, "--plan", PLAN, cwd=runner.layout.root,
                     env=conductor_env(None, key=None))
    assert done.returncode == 0, done.stderr


def the_journal_folded_afresh(runner: PlanRunner) -> dict:
    return replay(runner.journal, use_checkpoint=False).to_dict()


def test_an_approval_appended_before_the_engines_next_event_is_applied_first(runner: PlanRunner):
    runner.append("step.waiting_approval", fork_id="f2", step_id="step_001")
    approve(runner, "f2")
    runner.append("step.waiting_approval", fork_id="f1", step_id="step_001")  # the other fork goes on

    state = runner.state()
    assert state.forks["f2"].steps["step_001"].approved_by, "the approval was skipped"
    assert state.forks["f1"].steps["step_001"].state == "waiting_approval"
    assert state.to_dict() == the_journal_folded_afresh(runner)


def test_an_approval_appended_after_the_engines_last_event_is_seen_by_the_poll(runner: PlanRunner):
    runner.append("step.waiting_approval", fork_id="f1", step_id="step_001")
    runner.append("step.waiting_approval", fork_id="f2", step_id="step_001")
    assert not runner.refresh().forks["f2"].steps["step_001"].approved_by
    approve(runner, "f2")
    runner.append("step.approved", fork_id="f1", step_id="step_001", by="someone")  # lands after it

    assert runner.refresh().forks["f2"].steps["step_001"].approved_by
    assert runner.state().to_dict() == the_journal_folded_afresh(runner)


def test_the_approval_poll_returns_while_another_fork_keeps_journaling(runner: PlanRunner):
    async def scenario() -> str:
        waiting = asyncio.ensure_future(runner._await_approval("f2", "step_001", Confidence(score=0.1, level="low")))
        await asyncio.sleep(0.3)
        approval = asyncio.ensure_future(asyncio.to_thread(approve, runner, "f2"))
        while not approval.done():  # the other fork journals as fast as it can meanwhile
            runner.append("step.waiting_approval", fork_id="f1", step_id="step_002")
            await asyncio.sleep(0)
        await approval
        runner.append("step.waiting_approval", fork_id="f1", step_id="step_003")
        return await asyncio.wait_for(waiting, timeout=30)

    assert asyncio.run(scenario()) == "approved"
    assert runner.state().to_dict() == the_journal_folded_afresh(runner)
