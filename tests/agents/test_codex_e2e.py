"""Codex CLI runs the steps: the real `codex exec` against a scripted Responses API on loopback.

`conductor agent --preset codex` gives Codex a private CODEX_HOME whose config points at the
scripted server (config.yaml's model); each step is two turns, as Codex really works: the
model calls its `exec_command` tool to write the file, then answers with a message. Codex
runs in Conductor's bubblewrap sandbox (its own sandbox off).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from tests.agents.support import HELLO, TEST_HELLO, TWO_STEP_PLAN, Project
from tests.agents.tools import require_agent_tool
from tests.conftest import require_tool
from tests.support.openai_server import RecordedRequest, ScriptedOpenAIServer

KEY = "sk-scripted-codex-" + secrets.token_hex(12)


def authorization(request: RecordedRequest) -> str | None:
    return {name.lower(): value for name, value in request.headers.items()}.get("authorization")


def write_file(name: str, content: str) -> list[dict[str, object]]:
    """Turn 1 of a step: the model asks Codex to run a shell command that writes ``name``."""
    command = f"cat > {name} <<'CONDUCTOR_EOF'\n{content}CONDUCTOR_EOF"
    return [{"type": "function_call", "name": "exec_command", "arguments": json.dumps({"cmd": command})}]


def test_codex_plans_and_runs_both_steps_through_the_responses_api(
    tmp_path: Path, openai_server: ScriptedOpenAIServer
) -> None:
    bin_dir = require_agent_tool("codex")
    require_tool("bwrap")
    plan = "I looked at the goal. The plan:\n\n```json\n" + json.dumps(TWO_STEP_PLAN) + "\n```"
    openai_server.add(plan, api="responses", match="Plan this goal")
    openai_server.add(write_file("hello.py", HELLO), api="responses", match="## Step step_001")
    openai_server.add(write_file("test_hello.py", TEST_HELLO), api="responses", match="## Step step_002")
    openai_server.add("The file is written.", api="responses", match="function_call_output", times=None)
    root = tmp_path / "proj"
    root.mkdir()
    project = Project.create(root, config={"llm": {"base_url": openai_server.base_url, "model": "scripted-model",
                                                   "api_key_env": "SCRIPTED_MODEL_KEY"}},
                             behavior={"max_repairs": 0})
    agent_env = {**project.env, "SCRIPTED_MODEL_KEY": KEY, "PATH": f"{bin_dir}{os.pathsep}{project.env['PATH']}"}

    started = time.monotonic()
    built, agent_out = project.build("Create a greeting module with a test", "--preset", "codex", agent_env=agent_env)
    print(f"codex build: {time.monotonic() - started:.1f} s for a planning task and 2 steps")
    assert built.returncode == 0, built.stdout + built.stderr + agent_out

    assert (project.root / "hello.py").read_text() == HELLO
    assert (project.root / "test_hello.py").read_text() == TEST_HELLO
    assert project.conductor("verify").returncode == 0
    results = project.results()
    for step in ("step_001", "step_002"):
        run = results[step]["agent_run"]
        assert run["agent"] == "codex" and run["exit_code"] == 0 and run["version"].startswith("codex-cli 0.")
        assert run["command"] == "codex exec --skip-git-repo-check -"
    explanation = project.handoff_files("step_001.explanation.md")[0].read_text()
    assert "bubblewrap sandbox (network allow)" in explanation

    requests = openai_server.responses_requests
    assert len(requests) == 5  # the plan, then two turns per step
    assert all(r.body.get("stream") for r in requests)
    assert all(authorization(r) == f"Bearer {KEY}" for r in requests)
    assert KEY not in project.all_text()
