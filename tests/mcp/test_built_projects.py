"""The MCP door on a project the real engine built: what `next_task` hands an agent (every
verification command that will judge the step, from the project, the plan and the step), and
files in the queue that are not files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.mcp.conftest import mcp_client
from tests.support.fixtures import Built


def handoff(root: Path, plan_id: str, state: str) -> Path:
    return root / ".conductor" / "handoff" / f"plan_{plan_id}" / "fork_main" / state


async def test_next_task_names_the_project_plan_and_step_verification(mixed_project: Built, tmp_path: Path) -> None:
    """Issue 14: the plan file path was spelled twice, so plan- and step-level commands were never shown."""
    built = mixed_project.copy(tmp_path / "proj")
    async with mcp_client(built.root) as client:
        answer = await client.call("next_task", {"executor": "mcp-agent", "plan_id": built.plan_id})
    assert not answer.is_error, answer.text
    task = answer.data
    assert task["claimed"] is True and task["task_id"] == "step_004" and task["plan_id"] == built.plan_id
    assert [(v["name"], v["run"]) for v in task["verification"]] == [
        ("project check", "python -c \"print('project check')\""),
        ("plan check", "python -c \"print('plan check')\""),
        ("step check", "python -c \"print('step check')\"")]
    assert task["allowed_files"] == ["four.txt"] and task["instruction"] == "write four.txt: 4"
    assert (handoff(built.root, built.plan_id, "in_progress") / "step_004.claim.json").is_file()


async def test_a_fifo_or_a_device_link_in_the_queue_is_refused_never_waited_on(mixed_project: Built,
                                                                                tmp_path: Path) -> None:
    """Issue 13: only regular files are read; a FIFO or a symlink to /dev/zero gets a failed result
    that says why, and the agent's call is answered."""
    built = mixed_project.copy(tmp_path / "proj")
    pending = handoff(built.root, built.plan_id, "pending")
    os.mkfifo(pending / "step_009.task.json")
    (pending / "step_010.task.json").symlink_to("/dev/zero")
    async with mcp_client(built.root) as client:
        first = await client.call("next_task", {"executor": "mcp-agent", "plan_id": built.plan_id})
        assert first.data["task_id"] == "step_004"
        rest = await client.call("next_task", {"executor": "mcp-agent", "plan_id": built.plan_id})
    assert not rest.is_error and rest.data["claimed"] is False, rest.text
    in_progress = handoff(built.root, built.plan_id, "in_progress")
    for step_id, what in (("step_009", "named pipe"), ("step_010", "symbolic link")):
        result = json.loads((in_progress / f"{step_id}.result.json").read_text(encoding="utf-8"))
        assert result["status"] == "failed" and what in result["error"], result
