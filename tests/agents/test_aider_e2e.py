"""aider runs the steps: the real aider-chat against a scripted model on loopback, end to end.

`conductor agent --preset aider` claims the planning task and both steps of a build; aider
answers each from the scripted OpenAI-compatible server (in its "whole" edit format, over
streamed chat completions, its commit-message requests included) and auto-commits in the
step's working copy; Conductor verifies the files and merges. A second build where the
model makes aider edit a file outside allowed_files is refused, and nothing is merged.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

from tests.agents.support import HELLO, TEST_HELLO, TWO_STEP_PLAN, Project
from tests.agents.tools import require_agent_tool
from tests.conftest import require_tool
from tests.support.openai_server import RecordedRequest, ScriptedOpenAIServer

KEY = "sk-scripted-aider-" + secrets.token_hex(12)
COMMIT_PROMPT = "one-line Git commit messages"
VERIFY = [{"name": "greeting test", "run": "test ! -f test_hello.py || python3 test_hello.py", "timeout_seconds": 60}]


def authorization(request: RecordedRequest) -> str | None:
    return {name.lower(): value for name, value in request.headers.items()}.get("authorization")


def whole(*files: tuple[str, str]) -> str:
    """A reply in aider's "whole" edit format: each file's name on a line, then all of it in a fence."""
    return "".join(f"{name}\n```\n{content}```\n\n" for name, content in files) + "Done."


def plan_reply(plan: dict[str, object]) -> str:
    return "Here is the plan for this goal.\n\n```json\n" + json.dumps(plan, indent=2) + "\n```\n"


def aider_project(tmp_path: Path, server: ScriptedOpenAIServer) -> tuple[Project, dict[str, str]]:
    bin_dir = require_agent_tool("aider")
    require_tool("bwrap")
    root = tmp_path / "proj"
    root.mkdir()
    project = Project.create(root, config={"llm": {"base_url": server.base_url, "model": "scripted-model",
                                                   "api_key_env": "SCRIPTED_MODEL_KEY"}},
                             behavior={"max_repairs": 0, "sandbox": "required"}, verification=VERIFY)
    agent_env = {**project.env, "SCRIPTED_MODEL_KEY": KEY, "PATH": f"{bin_dir}{os.pathsep}{project.env['PATH']}"}
    return project, agent_env


def test_aider_plans_and_runs_both_steps_and_conductor_verifies_and_merges(
    tmp_path: Path, openai_server: ScriptedOpenAIServer
) -> None:
    openai_server.add("feat: apply the step", system=COMMIT_PROMPT, times=None)
    openai_server.add(plan_reply(TWO_STEP_PLAN), match="Plan this goal")
    openai_server.add(whole(("hello.py", HELLO)), match="## Step step_001")
    openai_server.add(whole(("test_hello.py", TEST_HELLO)), match="## Step step_002")
    project, agent_env = aider_project(tmp_path, openai_server)

    started = time.monotonic()
    built, agent_out = project.build("Create a greeting module with a test", "--preset", "aider", agent_env=agent_env)
    print(f"aider build: {time.monotonic() - started:.1f} s for a planning task and 2 steps")
    assert built.returncode == 0, built.stdout + built.stderr + agent_out

    steps = project.steps()
    assert [steps[s]["state"] for s in ("step_001", "step_002")] == ["completed", "completed"]
    assert (project.root / "hello.py").read_text() == HELLO  # merged into the user's branch
    assert (project.root / "test_hello.py").read_text() == TEST_HELLO
    verify = project.conductor("verify")
    assert verify.returncode == 0, verify.stdout

    results = project.results()
    assert results["step_000"]["plan"]["steps"][0]["id"] == "step_001"  # aider's answer, parsed from prose
    for step in ("step_001", "step_002"):
        run = results[step]["agent_run"]
        assert run["agent"] == "aider" and run["exit_code"] == 0
        assert run["version"].startswith("aider 0.86")
        assert "--message-file" in run["command"] and "--model openai/scripted-model" in run["command"]
        assert results[step]["nonce"]
    explain = project.conductor("explain", "step_001")
    assert "Agent: **aider** (aider 0.86" in explain.stdout and "--yes-always" in explain.stdout

    # aider really talked to the scripted model: streamed edits, non-streamed commit messages, the key as Bearer
    chats = openai_server.chat_requests
    edits = [r for r in chats if COMMIT_PROMPT not in r.system_prompt]
    commits = [r for r in chats if COMMIT_PROMPT in r.system_prompt]
    assert len(edits) == 3 and all(r.body.get("stream") for r in edits)
    assert len(commits) >= 2  # aider auto-committed in the steps' working copies …
    for step in ("step_001", "step_002"):
        explanation = project.handoff_files(f"{step}.explanation.md")[-1].read_text()
        assert re.search(r"Commit [0-9a-f]{7} feat: apply the step", explanation), explanation  # … and they held
        assert "bubblewrap sandbox" in explanation
    assert all(authorization(r) == f"Bearer {KEY}" for r in chats)
    assert "## Step step_001" in edits[1].last_user_message and "hello.py" in edits[1].last_user_message

    # aider's own files stayed out of the working copies and the merged result; the key leaked nowhere
    assert not list(project.root.glob(".aider*"))
    assert ".aider" not in project.git("log", "--all", "--name-only", "--format=")
    assert KEY not in project.all_text()


def test_aider_editing_a_file_outside_allowed_files_is_refused_and_nothing_is_merged(
    tmp_path: Path, openai_server: ScriptedOpenAIServer
) -> None:
    plan = {**TWO_STEP_PLAN, "steps": [TWO_STEP_PLAN["steps"][0]]}
    openai_server.add("feat: apply the step", system=COMMIT_PROMPT, times=None)
    openai_server.add(plan_reply(plan), match="Plan this goal")
    openai_server.add(whole(("hello.py", HELLO), ("notes.txt", "sneaked in\n")), match="## Step step_001")
    project, agent_env = aider_project(tmp_path, openai_server)
    head_before = project.git("rev-parse", "HEAD") if (project.root / ".git").exists() else None

    built, agent_out = project.build("Create a greeting module", "--preset", "aider",
                                     agent_env=agent_env)
    assert built.returncode == 1, built.stdout + built.stderr + agent_out

    step = project.steps()["step_001"]
    assert step["state"] == "failed"
    explain = json.loads(project.conductor("explain", "step_001", "--json").stdout)
    assert explain["failure"]["cause"] in ("out_of_scope", "evidence/outside-allowed-files"), explain["failure"]
    assert "notes.txt" in explain["failure"]["reason"]
    assert explain["agent_run"]["agent"] == "aider" and explain["agent_run"]["exit_code"] == 0
    # nothing merged: the user's checkout and branch have neither file
    assert not (project.root / "hello.py").exists() and not (project.root / "notes.txt").exists()
    tracked = project.git("ls-tree", "-r", "--name-only", "HEAD").split()
    assert "notes.txt" not in tracked and "hello.py" not in tracked
    if head_before is not None:
        assert project.git("rev-parse", "HEAD") == head_before
    assert project.conductor("verify").returncode == 0
