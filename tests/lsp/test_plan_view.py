"""``conductor/plans``: the editor asks the server what each step waits for; it never guesses.

A real build in handoff mode (the real engine, real git) waits for an agent to claim its
planning task. The server must say so: the planning step by its title and strategy, waiting
for an *agent* since the task was written, the plan ``waiting_for_agent``; after a cancel the
plan is ``halted`` and nothing waits any more. The project's readiness says llm mode lacks a
key without ever carrying a key.
"""

from __future__ import annotations

import asyncio
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from tests.conftest import require_tool
from tests.lsp.conftest import Recorder, server_env, start_client
from tests.lsp.helpers import wait_for


def _project(root: Path, mode: str = "handoff") -> Path:
    require_tool("git")
    (root / ".conductor").mkdir(parents=True)
    (root / ".conductor" / "policy.yaml").write_text("behavior:\n  max_diff_lines: 100\n")
    (root / ".conductor" / "config.yaml").write_text(f"mode: {mode}\nforks: 1\nllm:\n  api_key_env: E2E_NO_SUCH_KEY\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "s"],
                   cwd=root, check=True)
    return root


async def _plans(client: Any) -> dict[str, Any]:
    result = await client.protocol.send_request_async("conductor/plans", None)
    return _plain(result)


def _plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):  # pygls gives untyped results as named tuples
        value = value._asdict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


async def test_a_handoff_build_waits_for_an_agent_and_says_so(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    env = server_env(tmp_path)
    client = await start_client(project, "visual_studio_code", tmp_path, Recorder(), env=env)
    try:
        started = await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command="conductor.build", arguments=[{"goal": "Add a"}]))
        plan_id = started["plan_id"]

        async def waiting() -> Any:
            view = await _plans(client)
            plan = next((p for p in view["plans"] if p["plan_id"] == plan_id), None)
            return plan if plan and plan["waiting"] else None

        plan = None
        for _ in range(150):
            plan = await waiting()
            if plan:
                break
            await asyncio.sleep(0.1)
        assert plan is not None, "the plan never reported a waiting step"
        assert plan["display_state"] == "waiting_for_agent"
        assert plan["waiting"]["waiting_for"] == "agent" and plan["waiting"]["step_id"] == "step_000"
        assert plan["waiting"]["task"].endswith("pending/step_000.task.json")
        datetime.fromisoformat(plan["waiting"]["since"])  # an ISO time the client counts from
        step = plan["forks"][0]["steps"][0]
        assert step["title"] == "Planning (strategy: default)" and step["kind"] == "plan"
        assert step["state"] == "in_progress" and step["waiting_for"] == "agent"
        view = await _plans(client)
        assert view["projects"][0]["mode"] == "handoff"

        await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command="conductor.cancel", arguments=[{"plan_id": plan_id}]))
        await wait_for(lambda: any(f"build {plan_id} cancelled" in m.message for m in client.messages),
                       what="cancelled", timeout=30)
        halted = next(p for p in (await _plans(client))["plans"] if p["plan_id"] == plan_id)
        assert halted["display_state"] == "halted" and halted["waiting"] is None
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_llm_mode_without_a_key_is_reported_without_the_key(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj", mode="llm")
    env = server_env(tmp_path)
    client = await start_client(project, "neovim", tmp_path, Recorder(), env=env)
    try:
        ready = (await _plans(client))["projects"][0]
        assert ready["mode"] == "llm" and ready["api_key_set"] is False and ready["api_key_env"] == "E2E_NO_SUCH_KEY"
    finally:
        await client.shutdown_session()
        await client.stop()
