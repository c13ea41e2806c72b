"""Result files are judged only when whole and valid; invalid ones get diagnostics and wait."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from conductor.contract.provenance import decode_predicate
from conductor.handoff import HandoffCoordinator, TaskSpec
from conductor.handoff.claim import claim_next
from conductor.project.layout import ProjectLayout

VALID = {"contract_version": "1.0", "task_id": "step_001", "status": "completed", "files_changed": [],
         "summary": "nothing to do", "executor": "test"}


async def eventually(check, timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true (the coordinator works concurrently; machines may be slow)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.05)


def answer(claimed):
    """A valid result for the claimed task: contract 2.0, its nonce echoed."""
    return {**VALID, "contract_version": "2.0", "nonce": json.loads(claimed.read_text())["nonce"]}


def audit_events(layout: ProjectLayout) -> list[dict]:
    path = layout.audit_log("p1", "main")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def claim_when_pending(layout: ProjectLayout) -> Path:
    for _ in range(200):
        claimed = claim_next(layout)
        if claimed is not None:
            return claimed
        await asyncio.sleep(0.02)
    raise AssertionError("no task appeared")


def write_in_place(path: Path, data: bytes) -> None:
    """A careless agent: writes the result file directly, not atomically."""
    with open(path, "ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


async def test_half_written_result_is_not_ingested_early(project: ProjectLayout) -> None:
    layout = project
    async with HandoffCoordinator(layout) as coord:
        step = asyncio.create_task(coord.hand_off(TaskSpec("p1", "main", "do nothing", ["x.txt"])))
        claimed = await claim_when_pending(layout)
        result = claimed.with_name("step_001.result.json")
        text = json.dumps(answer(claimed)).encode()
        write_in_place(result, text[:25])
        await eventually(lambda: any(e["event"] == "result.invalid" for e in audit_events(layout)))
        await asyncio.sleep(0.3)
        assert not step.done()
        invalid = [e for e in audit_events(layout) if e["event"] == "result.invalid"]
        assert len(invalid) == 1 and invalid[0]["diagnostics"][0]["code"].startswith("json/")
        assert result.exists()  # left for the agent to finish
        write_in_place(result, text[25:])
        outcome = await asyncio.wait_for(step, 10)
    assert outcome.status == "completed", outcome.reason
    assert outcome.result_path is not None and outcome.result_path.read_bytes() == text
    assert outcome.provenance.result_digest is not None


async def test_invalid_result_gets_diagnostic_and_agent_may_rewrite(project: ProjectLayout) -> None:
    layout = project
    async with HandoffCoordinator(layout) as coord:
        step = asyncio.create_task(coord.hand_off(TaskSpec("p1", "main", "do nothing", ["x.txt"])))
        claimed = await claim_when_pending(layout)
        result = claimed.with_name("step_001.result.json")
        result.write_text(json.dumps({**answer(claimed), "status": "done"}))
        await eventually(lambda: any(e["event"] == "result.invalid" for e in audit_events(layout)))
        await asyncio.sleep(0.3)
        assert not step.done()
        invalid = [e for e in audit_events(layout) if e["event"] == "result.invalid"]
        assert len(invalid) == 1
        diag = invalid[0]["diagnostics"][0]
        assert diag["line"] == 1 and "status" in json.dumps(invalid[0]["diagnostics"])
        result.write_text(json.dumps(answer(claimed)))
        outcome = await asyncio.wait_for(step, 10)
    assert outcome.status == "completed", outcome.reason
    assert [e["event"] for e in audit_events(layout)].count("result.received") == 1


async def test_unclaimed_task_is_reported_and_withdrawn(project: ProjectLayout) -> None:
    layout = project
    events: list[dict] = []
    async with HandoffCoordinator(layout, on_event=events.append) as coord:
        outcome = await coord.hand_off(TaskSpec("p1", "main", "nobody will do this", ["x.txt"]), claim_timeout=0.5)
    assert outcome.status == "failed" and outcome.reason_code == "evidence/unclaimed"
    assert outcome.task_path == layout.state_dir("p1", "main", "failed") / "step_001.task.json"
    assert outcome.task_path.exists()
    assert not list(layout.state_dir("p1", "main", "pending").iterdir())
    assert "task.unclaimed" in [e["event"] for e in events]
    assert decode_predicate(json.loads(outcome.provenance_path.read_text()))["reason"].startswith("no agent claimed")


async def test_polling_fallback_still_works(project: ProjectLayout, agent_thread) -> None:
    layout = project
    async with HandoffCoordinator(layout, force_polling=True, poll_interval=0.05) as coord:
        assert coord.watcher.mode == "polling"
        agent_thread(layout)
        outcome = await coord.hand_off(TaskSpec("p1", "main", "write x.txt: x", ["x.txt"]))
    assert outcome.status == "completed", outcome.reason
    assert outcome.evidence.created == ["x.txt"]
