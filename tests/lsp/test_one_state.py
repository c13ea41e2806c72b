"""One state, every door: the CLI, the MCP server and the language server show the same state for
every step, and ``conductor/stepChanged`` carries exactly what the editor's tree renders.

A real `conductor build` runs while a language server watches the project: its steps reach
failed (the agent exited 1), skipped (a person rejected it), waiting for approval (LOW
confidence) and handed off with no agent yet, and the engine keeps running (waiting for the
person and the agent). The last ``conductor/stepChanged`` of each step, the server's
``conductor.status``, ``conductor status --json`` and the MCP ``status`` tool must then agree
field for field.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from tests.lsp.conftest import Recorder, start_client
from tests.lsp.helpers import wait_for
from tests.mcp.conftest import mcp_client
from tests.support.projects import build_mixed, conductor

FINAL = {"step_000": "completed",  # the planning task an agent did
         "step_001": "failed", "step_002": "skipped", "step_003": "waiting_approval", "step_004": "in_progress"}


def steps_of(status: dict[str, Any], plan_id: str) -> dict[str, dict[str, Any]]:
    (plan,) = [p for p in status["plans"] if p["plan_id"] == plan_id]
    return {s["step_id"]: s for fork in plan["forks"] for s in fork["steps"]}


async def test_every_door_shows_the_same_state_of_every_step(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    loop = asyncio.get_running_loop()
    project_made, server_started = asyncio.Event(), threading.Event()

    def on_started(_root: Path) -> None:  # in the build's thread: the project exists, the build has not begun
        loop.call_soon_threadsafe(project_made.set)
        assert server_started.wait(60)

    running: list[subprocess.Popen[str]] = []
    building = asyncio.ensure_future(asyncio.to_thread(build_mixed, root, on_started, running))
    await asyncio.wait_for(project_made.wait(), 60)
    rec = Recorder()
    # Neovim's capabilities: no file-watching registration, so the server watches the project
    # itself (a VS Code client would forward its own watcher's events; this test client has none)
    client = await start_client(root, "neovim", tmp_path, rec)
    server_started.set()
    try:
        plan_id = await asyncio.wait_for(building, 180)
        last: dict[str, dict[str, Any]] = {}

        def settled() -> bool:
            for change in rec.step_changes:
                if change["plan_id"] == plan_id:
                    last[change["step_id"]] = change
            return {k: v["state"] for k, v in last.items()} == FINAL

        await wait_for(settled, timeout=30, what=f"stepChanged of the final states {FINAL}")
        lsp_status = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
            command="conductor.status", arguments=[{"plan_id": plan_id}]))
        cli = conductor("status", "--json", "--plan", plan_id, cwd=root)
        assert cli.returncode == 0, cli.stderr
        async with mcp_client(root) as mcp:
            answer = await mcp.call("status", {"plan_id": plan_id})
        assert not answer.is_error, answer.text
        plans = await client.protocol.send_request_async("conductor/plans", None)
    finally:
        for build in running:  # the engine was still waiting for the person and the agent
            build.send_signal(signal.SIGINT)
            build.wait(60)
        await client.shutdown_session()
        await client.stop()

    by_cli = steps_of(json.loads(cli.stdout), plan_id)
    by_lsp = steps_of(lsp_status, plan_id)
    by_mcp = steps_of(answer.data, plan_id)
    (view,) = [p for p in commands_json(plans)["plans"] if p["plan_id"] == plan_id]
    by_view = {s["step_id"]: s for fork in view["forks"] for s in fork["steps"]}
    assert by_cli == by_lsp == by_mcp == by_view == last  # field for field, the notification and the tree's included
    assert view["display_state"] == "waiting_for_approval" and view["waiting"]["step_id"] == "step_003"
    assert {k: v["state"] for k, v in by_cli.items()} == FINAL

    # the exact payload the editor receives (and renders in its tree), one per kind of state
    handoff = root.resolve() / ".conductor" / "handoff" / f"plan_{plan_id}" / "fork_main"
    s1, s2, s3, s4 = (last[f"step_00{i}"] for i in range(1, 5))
    assert s1 == {
        "plan_id": plan_id, "fork_id": "main", "step_id": "step_001", "kind": "step",
        "title": "A step whose agent fails",
        "state": "failed", "since": s1["since"], "waiting_for": None, "waiting_since": None, "claimed": True,
        "executor": s1["executor"], "attempts": 1, "confidence": {"score": s1["confidence"]["score"], "level": "high"},
        "reason": "the executor reported failure: command exited 1: ",
        "paths": {"task": str(handoff / "failed" / "step_001.task.json"),
                  "result": str(handoff / "failed" / "step_001.result.json"),
                  "provenance": str(handoff / "failed" / "step_001.provenance.json")}, "requested_loosening": [],
        # the refused attempt's working copy, kept while the plan runs
        "kept_copies": [str(root.resolve() / ".conductor" / "attempts" / plan_id / "main" / "step_001.1")]}
    assert s1["executor"].startswith("failing-agent@")
    assert s2 == {
        "plan_id": plan_id, "fork_id": "main", "step_id": "step_002", "kind": "step",
        "title": "A risky step a person rejects",
        "state": "skipped", "since": s2["since"], "waiting_for": None, "waiting_since": None, "claimed": False,
        "executor": None, "attempts": 0, "confidence": {"score": s2["confidence"]["score"], "level": "low"},
        "reason": f"rejected by {s2['reason'].removeprefix('rejected by ')}",
        "paths": {"task": None, "result": None, "provenance": None}, "requested_loosening": [], "kept_copies": []}
    assert s3 == {
        "plan_id": plan_id, "fork_id": "main", "step_id": "step_003", "kind": "step",
        "title": "A risky step waiting for approval",
        "state": "waiting_approval", "since": s3["since"], "waiting_for": "approval", "waiting_since": s3["since"],
        "claimed": False, "executor": None, "attempts": 0,
        "confidence": {"score": s3["confidence"]["score"], "level": "low"},
        "reason": f"LOW confidence {s3['confidence']['score']}: waits for a person's approval",
        "paths": {"task": None, "result": None, "provenance": None}, "requested_loosening": [], "kept_copies": []}
    assert s4 == {
        "plan_id": plan_id, "fork_id": "main", "step_id": "step_004", "kind": "step",
        "title": "A step nobody has taken yet",
        "state": "in_progress", "since": s4["since"], "waiting_for": "agent", "waiting_since": s4["since"],
        "claimed": False, "executor": None, "attempts": 1,
        "confidence": {"score": s4["confidence"]["score"], "level": "high"}, "reason": None,
        "paths": {"task": str(handoff / "pending" / "step_004.task.json"), "result": None, "provenance": None},
        "requested_loosening": [], "kept_copies": []}
    # "since" is the timestamp of the journal event that put the step in its state
    events = [json.loads(line) for line in (root / ".conductor" / "plans" / plan_id / "journal.jsonl").read_text(
        encoding="utf-8").splitlines()]
    entered = {"step_001": "step.failed", "step_002": "step.rejected", "step_003": "step.waiting_approval",
               "step_004": "step.handed_off"}
    for step_id, kind in entered.items():
        (event,) = [e for e in events if e["type"] == kind and e["data"].get("step_id") == step_id]
        assert last[step_id]["since"] == event["ts"], step_id


def commands_json(value: Any) -> Any:
    """pygls gives an untyped result as named tuples: back to plain JSON."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: commands_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [commands_json(v) for v in value]
    return value
