"""Each attempt is tied to its result: the task carries an attempt and a nonce, the result must echo
the nonce and must be written after the claim, and the verdict is written where the task says."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from conductor.contract.checksum import task_checksum
from conductor.handoff import HandoffCoordinator, TaskSpec
from conductor.project.layout import ProjectLayout
from tests.handoff.test_results import answer, claim_when_pending


async def test_a_task_carries_everything_that_is_enforced(project: ProjectLayout) -> None:
    async with HandoffCoordinator(project) as coord:
        step = asyncio.create_task(coord.hand_off(TaskSpec("p1", "main", "write x", ["x.txt"])))
        claimed = await claim_when_pending(project)
        task = json.loads(claimed.read_text())
        claimed.with_name("step_001.result.json").write_text(json.dumps(answer(claimed)))
        outcome = await asyncio.wait_for(step, 20)
    assert task["contract_version"] == "2.0" and task["attempt"] == 1 and len(task["nonce"]) == 32
    assert task["checksum"] == task_checksum(task)
    assert task["max_files_changed"] == 50 and task["max_diff_lines"] == 50 and task["timeout_seconds"] == 30
    assert task["verification"] == [{"name": "readme present", "run": "test -f README.md", "timeout_seconds": 20,
                                     "pass_env": []}]
    assert task["protected_patterns"] == [".conductor/**", ".git/**", "*.lock"]
    assert task["workspace"].startswith("/")
    verdict = json.loads(Path(task["verdict_file"]).read_text())
    assert outcome.ok, outcome.reason
    assert (verdict["task_id"], verdict["attempt"], verdict["nonce"], verdict["verdict"]) == (
        "step_001", 1, task["nonce"], "pass")


async def test_a_result_with_another_nonce_is_refused(project: ProjectLayout) -> None:
    async with HandoffCoordinator(project) as coord:
        step = asyncio.create_task(coord.hand_off(TaskSpec("p1", "main", "write x", ["x.txt"])))
        claimed = await claim_when_pending(project)
        forged = {**answer(claimed), "nonce": "0" * 32}
        claimed.with_name("step_001.result.json").write_text(json.dumps(forged))
        outcome = await asyncio.wait_for(step, 20)
    assert outcome.reason_code == "evidence/nonce-mismatch"
    verdict = json.loads(Path(json.loads(outcome.task_path.read_text())["verdict_file"]).read_text())
    assert verdict["verdict"] == "fail" and verdict["reason_code"] == "evidence/nonce-mismatch"


async def test_a_result_written_before_the_claim_is_refused(project: ProjectLayout) -> None:
    async with HandoffCoordinator(project) as coord:
        step = asyncio.create_task(coord.hand_off(TaskSpec("p1", "main", "write x", ["x.txt"])))
        fork = project.fork_dir("p1", "main")
        for _ in range(200):
            pending = fork / "pending" / "step_001.task.json"
            if pending.exists():
                break
            await asyncio.sleep(0.02)
        body = json.loads(pending.read_text())
        planted = {"contract_version": "2.0", "nonce": body["nonce"], "task_id": "step_001", "status": "completed",
                   "files_changed": [], "summary": "did it all", "executor": "cheat"}
        (fork / "in_progress" / "step_001.result.json").write_text(json.dumps(planted))
        await asyncio.sleep(0.05)
        pending.rename(fork / "in_progress" / "step_001.task.json")
        outcome = await asyncio.wait_for(step, 20)
    assert outcome.reason_code == "evidence/result-before-claim", outcome.reason


async def test_attempts_are_numbered_and_each_has_its_own_nonce(project: ProjectLayout) -> None:
    nonces = []
    async with HandoffCoordinator(project) as coord:
        for expected in (1, 2):
            step = asyncio.create_task(coord.hand_off(TaskSpec("p1", "main", "write x", ["x.txt"], task_id="step_001")))
            claimed = await claim_when_pending(project)
            task = json.loads(claimed.read_text())
            assert task["attempt"] == expected
            nonces.append(task["nonce"])
            claimed.with_name("step_001.result.json").write_text(json.dumps(answer(claimed)))
            await asyncio.wait_for(step, 20)
    assert nonces[0] != nonces[1]
