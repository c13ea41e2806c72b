"""Verification commands and executor failures become evidence, with output digests and tails."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from conductor.handoff import HandoffCoordinator, TaskSpec
from conductor.project.layout import ProjectLayout
from tests.handoff.conftest import make_project

FAILING_CHECKS = """\
behavior:
  timeout_seconds: 30
verification:
  - name: lint
    run: echo checked; exit 3
  - name: hang
    run: sleep 30
    timeout_seconds: 1
"""


def test_failing_and_hanging_verification_commands(tmp_path: Path, agent_thread) -> None:
    layout = make_project(tmp_path / "p", policy=FAILING_CHECKS)

    async def run():
        async with HandoffCoordinator(layout) as coord:
            agent_thread(layout)
            return await coord.hand_off(TaskSpec("e1", "main", "write x.txt: x", ["x.txt"]))

    outcome = asyncio.run(run())
    assert outcome.status == "failed" and outcome.reason_code == "evidence/verification-failed"
    lint, hang = outcome.evidence.verification
    assert (lint.exit_code, lint.timed_out, lint.output_tail) == (3, False, "checked")
    assert lint.output_sha256 == hashlib.sha256(b"checked\n").hexdigest()
    assert hang.timed_out and hang.exit_code is None and hang.duration_seconds < 10
    assert {v.message for v in outcome.evidence.violations} == {
        "verification `lint` exited 3", "verification `hang` timed out after 1s"}


def test_executor_reported_failure(project: ProjectLayout, agent_thread) -> None:
    layout = project

    async def run():
        async with HandoffCoordinator(layout) as coord:
            agent_thread(layout)
            return await coord.hand_off(TaskSpec("e2", "main", "write x.txt: half done\nexit 1", ["x.txt"]))

    outcome = asyncio.run(run())
    assert outcome.status == "failed" and outcome.reason_code == "evidence/executor-failed"
    assert outcome.evidence.created == ["x.txt"]  # measured even though the step failed
    assert outcome.explanation_path is not None and outcome.explanation_path.parent.name == "failed"


PASSES_A_SECRET = """\
behavior:
  timeout_seconds: 30
  sandbox: "off"
verification:
  - name: needs the token
    run: test -n "$NPM_TOKEN" && test -z "$OTHER_TOKEN"
    pass_env: [NPM_TOKEN]
  - name: gets none
    run: test -z "$NPM_TOKEN"
"""


def test_a_verification_command_gets_only_the_secrets_it_names(tmp_path: Path, agent_thread, monkeypatch) -> None:
    monkeypatch.setenv("NPM_TOKEN", "npm-token-value-123")
    monkeypatch.setenv("OTHER_TOKEN", "other-token-value-456")
    layout = make_project(tmp_path / "p", policy=PASSES_A_SECRET)

    async def run():
        async with HandoffCoordinator(layout) as coord:
            agent_thread(layout)
            return await coord.hand_off(TaskSpec("e3", "main", "write x.txt: x", ["x.txt"]))

    outcome = asyncio.run(run())
    assert outcome.status == "completed", [(c.name, c.exit_code) for c in outcome.evidence.verification]
