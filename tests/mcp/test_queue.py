"""The MCP door to the handoff queue: racing claims, verified refusals, and bad calls that change nothing."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import anyio
import pytest
from mcp import MCPError

from conductor.engine import api
from conductor.handoff import HandoffCoordinator, TaskSpec
from conductor.project.layout import ProjectLayout
from tests.mcp.conftest import Client, claim_record, conductor, mcp_client, step_policy, tree, write_pending

SNAPSHOT = Path(__file__).with_name("tools_snapshot.json")


async def test_two_clients_race_and_each_task_is_claimed_once(project: ProjectLayout) -> None:
    written = [write_pending(project, f"write f{i}.txt", [f"f{i}.txt"]) for i in range(8)]
    assert [w.task.task_id for w in written] == [f"step_{i:03d}" for i in range(1, 9)]
    claims: dict[str, list[str]] = {"alpha": [], "beta": []}

    async def drain(client: Client, name: str) -> None:
        while True:
            answer = await client.call("next_task", {"executor": name})
            assert not answer.is_error, answer.text
            if not answer.data["claimed"]:
                assert "no task ready" in answer.text
                return
            claims[name].append(answer.data["task_id"])

    async with mcp_client(project.root) as a, mcp_client(project.root) as b, anyio.create_task_group() as tg:
        tg.start_soon(drain, a, "alpha")
        tg.start_soon(drain, b, "beta")
    taken = claims["alpha"] + claims["beta"]
    assert sorted(taken) == [w.task.task_id for w in written], claims  # every task once, none twice
    assert not list(project.state_dir("p1", "main", "pending").iterdir())
    for name, ids in claims.items():
        for task_id in ids:
            assert claim_record(project, "p1", "main", task_id)["executor"] == name


async def test_a_protected_file_is_refused_with_evidence(project: ProjectLayout) -> None:
    root = project.root
    async with HandoffCoordinator(project) as coord, mcp_client(root) as client:
        handoff = asyncio.create_task(coord.hand_off(TaskSpec("p1", "main", "write notes.txt", ["notes.txt"])))
        task = await client.call("next_task", {"executor": "sneaky", "wait_seconds": 10})
        assert task.data["claimed"] and "*.lock" in task.data["protected_patterns"]
        workspace = Path(task.data["workspace"])
        (workspace / "notes.txt").write_text("notes\n")
        (workspace / "poetry.lock").write_text("changed\n")
        verdict = await client.call("submit_result", {
            "task_id": task.data["task_id"], "executor": "sneaky", "status": "completed", "summary": "notes",
            "explanation": "wrote notes", "files_changed": ["notes.txt"]})
        outcome = await handoff
    assert not verdict.is_error, verdict.text
    data = verdict.data
    assert data["verdict"] == "fail" and data["state"] == "failed"
    assert data["reason_code"] == "evidence/protected-file"
    assert {"code": "evidence/protected-file", "path": "poetry.lock"}.items() <= data["violations"][0].items()
    assert data["files_changed"]["modified"] == ["poetry.lock"] and data["files_changed"]["created"] == ["notes.txt"]
    assert data["unreported_changes"] == ["poetry.lock"]
    assert "FAIL" in verdict.text and "poetry.lock" in verdict.text
    assert outcome.status == "failed" and outcome.executor == "sneaky"
    assert data["provenance"] == project.relative(outcome.provenance_path)
    verify = conductor("verify", cwd=root)  # the audit log and provenance of a step done over MCP verify
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_bad_calls_are_errors_and_change_nothing(project: ProjectLayout) -> None:
    root = project.root
    write_pending(project, "write a.txt", ["a.txt"])  # step_001
    write_pending(project, "write b.txt", ["b.txt"])  # step_002
    write_pending(project, "plan it", [], kind="plan", plan="p2")  # step_001 of plan p2
    submit = {"executor": "alice", "status": "completed", "summary": "s", "explanation": "e"}

    async with mcp_client(root) as client:
        async def refused(tool: str, args: dict, *needles: str) -> str:
            before = tree(project)
            answer = await client.call(tool, args)
            assert answer.is_error, (tool, args, answer.text)
            for needle in needles:
                assert needle in answer.text, (needle, answer.text)
            assert tree(project) == before, f"{tool} {args} changed files"
            return answer.text

        # arguments that do not match the schema
        await refused("submit_result", {**submit, "task_id": "step_001", "status": "done"},
                      "argument `status`", "'done' is not one of ['completed', 'failed']")
        await refused("submit_result", {"task_id": "step_001", "status": "completed"}, "'executor' is a required")
        await refused("submit_result", {**submit, "task_id": "../x"}, "argument `task_id`", "does not match")
        await refused("next_task", {"executor": "alice", "priority": 1}, "Additional properties")
        await refused("next_task", {"executor": "alice", "plan_id": "nope"}, "no plan 'nope'", "known: p1, p2")
        await refused("no_such_tool", {}, "unknown tool 'no_such_tool'")
        await refused("approve", {"step_id": "step_001"}, "unknown tool 'approve'")  # not without --allow-approve
        # an unknown task, and a task nobody claimed
        await refused("submit_result", {**submit, "task_id": "step_999"}, "unknown task", "step_999")
        await refused("submit_result", {**submit, "task_id": "step_002", "plan_id": "p1"},
                      "pending, not claimed")

        first = await client.call("next_task", {"executor": "alice", "plan_id": "p1"})
        assert first.data["task_id"] == "step_001" and first.data["executor"] == "alice"
        # a result for a task claimed by another executor
        await refused("submit_result", {**submit, "task_id": "step_001", "plan_id": "p1", "executor": "bob"},
                      "claimed by 'alice', not by 'bob'")
        # ambiguous without plan_id? step_001 is in progress only in p1, pending in p2: the p1 one is meant.
        # a plan for a step task, and a planning task without a plan
        await refused("submit_result", {**submit, "task_id": "step_001", "plan_id": "p1", "plan": {"goal": "g"}},
                      "`plan` is only for planning tasks")
        planning = await client.call("next_task", {"executor": "alice", "plan_id": "p2"})
        assert planning.data["kind"] == "plan"
        await refused("submit_result", {**submit, "task_id": "step_001", "plan_id": "p2"}, "needs `plan`")
        await refused("submit_result", {**submit, "task_id": "step_001", "plan_id": "p2", "plan": {"goal": "g"}},
                      "not a valid plan document")
        await refused("submit_result", {**submit, "task_id": "step_001"}, "in progress in several forks",
                      "pass plan_id and fork_id")

        # a first submit is written (nobody verifies here: wait 0); the second is refused
        (root / "a.txt").write_text("a\n")
        sent = await client.call("submit_result", {**submit, "task_id": "step_001", "plan_id": "p1",
                                                   "files_changed": ["a.txt"], "wait_seconds": 0})
        assert not sent.is_error and sent.data["state"] == "submitted", sent.text
        in_progress = project.state_dir("p1", "main", "in_progress")
        result = json.loads((in_progress / "step_001.result.json").read_text())
        assert result["executor"] == "alice" and result["files_changed"] == ["a.txt"]
        assert (in_progress / "step_001.explanation.md").read_text() == "e\n"
        await refused("submit_result", {**submit, "task_id": "step_001", "plan_id": "p1"},
                      "already submitted and is waiting for verification")

        # a submit after the deadline
        write_pending(project, "write c.txt", ["c.txt"], plan="p3", timeout_seconds=1)
        late = await client.call("next_task", {"executor": "alice", "plan_id": "p3"})
        assert late.data["timeout_seconds"] == 1
        await anyio.sleep(1.2)
        await refused("submit_result", {**submit, "task_id": "step_001", "plan_id": "p3"}, "timed out",
                      "deadline")


async def test_a_second_submit_and_a_late_submit_after_conductor_moved_the_task(project: ProjectLayout) -> None:
    root = project.root
    submit = {"executor": "carol", "status": "completed", "summary": "s", "explanation": "e"}
    short = step_policy(project, timeout_seconds=1)
    async with HandoffCoordinator(project) as coord, mcp_client(root) as client:
        ok = asyncio.create_task(coord.hand_off(TaskSpec("p1", "main", "write a.txt", ["a.txt"])))
        task = await client.call("next_task", {"executor": "carol", "wait_seconds": 10})
        (Path(task.data["workspace"]) / "a.txt").write_text("a\n")
        verdict = await client.call("submit_result", {**submit, "task_id": task.data["task_id"],
                                                      "files_changed": ["a.txt"]})
        assert verdict.data["verdict"] == "pass", verdict.text
        await ok
        slow = asyncio.create_task(coord.hand_off(TaskSpec("p1", "main", "write b.txt", ["b.txt"], policy=short)))
        task2 = await client.call("next_task", {"executor": "carol", "wait_seconds": 10})
        assert task2.data["task_id"] == "step_002"
        timed_out = await slow
        assert timed_out.reason_code == "evidence/timeout"
        await asyncio.sleep(0.3)  # let the coordinator's metrics settle

        for args, needle in (
            ({**submit, "task_id": "step_001"}, "already verified (completed, verdict pass)"),
            ({**submit, "task_id": "step_002"}, "failed as a timeout"),
        ):
            before = tree(project)
            answer = await client.call("submit_result", args)
            assert answer.is_error and needle in answer.text, answer.text
            assert tree(project) == before


async def test_tool_list_matches_the_snapshot(project: ProjectLayout) -> None:
    async with mcp_client(project.root, "--allow-approve") as client:
        tools = (await client.session.list_tools()).tools
        approve = await client.call("approve", {"step_id": "step_001"})
        resources = [str(r.uri) for r in (await client.session.list_resources()).resources]
        policy = json.loads((await client.session.read_resource("conductor://policy")).contents[0].text)  # type: ignore[union-attr]
        with pytest.raises(MCPError) as unknown:
            await client.session.read_resource("conductor://nope")
    assert resources == ["conductor://policy", "conductor://plan/current"]
    assert policy["file_rules"]["protected_patterns"][2]["origin"]["file"] == ".conductor/policy.yaml"
    assert unknown.value.code == -32002 and "unknown resource" in unknown.value.message
    listed = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(listed, indent=2, ensure_ascii=False) + "\n")
    assert listed == json.loads(SNAPSHOT.read_text()), "tool list changed: review, then UPDATE_SNAPSHOT=1"
    assert [t["name"] for t in listed] == ["next_task", "submit_result", "status", "explain", "approve"]
    for tool in listed:
        assert 150 < len(tool["description"]) < 900, tool["name"]  # one paragraph each
    submit = next(t for t in listed if t["name"] == "submit_result")["inputSchema"]
    assert submit["properties"]["status"]["enum"] == ["completed", "failed"]  # from result.schema.json
    assert submit["properties"]["task_id"]["pattern"] == "^step_[0-9]{3,}$"
    assert approve.is_error and "no plans yet" in approve.text  # offered, and answered by engine.api


def test_print_config_gives_the_per_user_snippet(project: ProjectLayout) -> None:
    proc = conductor("mcp", "--print-config", cwd=project.root)
    assert proc.returncode == 0, proc.stderr
    entry = json.loads(proc.stdout)["mcpServers"]["conductor"]
    assert entry["command"].endswith("conductor")
    assert entry["args"] == ["mcp", "--root", str(project.root)]


async def test_outside_a_project_the_tools_say_so(tmp_path: Path) -> None:
    async with mcp_client(tmp_path) as client:
        answer = await client.call("next_task", {"executor": "x"})
    assert answer.is_error and "not inside a Conductor project" in answer.text and str(tmp_path) in answer.text


def test_claim_deadline_is_the_task_timeout(project: ProjectLayout) -> None:
    write_pending(project, "write a.txt", ["a.txt"], timeout_seconds=7)
    before = time.time()
    task = api.next_task(project.root, "dave")
    assert task is not None
    record = claim_record(project, "p1", "main", "step_001")
    assert before + 7 <= record["deadline_epoch"] <= time.time() + 7 and record["via"] == "mcp"
