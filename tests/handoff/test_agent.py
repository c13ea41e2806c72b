"""`conductor agent` as a real process: filters, limits, the LLM path, and the no-LLM error."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from conductor.handoff import HandoffCoordinator, TaskSpec
from conductor.handoff.tasks import TaskSpec as Spec
from conductor.handoff.tasks import write_task
from conductor.policy import load_project_policy
from conductor.project.layout import ProjectLayout
from tests.support.openai_server import ScriptedOpenAIServer

KEY_VARS = ("GEMINI_API_KEY", "CONDUCTOR_API_KEY", "OPENAI_API_KEY", "CONDUCTOR_LLM_BASE_URL")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env.update(extra)
    return env


def conductor(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conductor", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_without_command_or_llm_is_a_clear_error(project: ProjectLayout) -> None:
    out = conductor("agent", "--once", "--root", str(project.root), env=clean_env())
    assert out.returncode == 3
    assert "no --command given and no LLM configured" in out.stderr


def test_plan_filter_and_max_tasks(project: ProjectLayout) -> None:
    layout = project
    policy = load_project_policy(layout.root)
    for plan in ("p1", "p2"):
        for _ in range(2):
            write_task(layout, Spec(plan, "main", "write x.txt: x", ["x.txt"]), policy, ".")
    out = conductor("agent", "--plan", "p2", "--max-tasks", "1", "--root", str(layout.root),
                    "--command", "true")
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stdout.splitlines() if line.startswith("claimed")] == ["claimed p2/main/step_001"]
    assert len(list(layout.state_dir("p1", "main", "pending").glob("*.task.json"))) == 2
    assert (layout.state_dir("p2", "main", "in_progress") / "step_001.result.json").exists()


def test_llm_agent_writes_only_allowed_files(project: ProjectLayout) -> None:
    layout = project
    with ScriptedOpenAIServer() as server:
        server.add({"summary": "added hello", "files": [{"path": "hello.py", "content": "print('hello')\n"},
                                                         {"path": "evil.py", "content": "boom\n"}]},
                   purpose="handoff-step")
        env = clean_env(CONDUCTOR_API_KEY="test-key", CONDUCTOR_LLM_BASE_URL=server.base_url)

        async def run() -> None:
            async with HandoffCoordinator(layout) as coord:
                agent = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "conductor", "agent", "--once", "--idle-exit", "20", "--root",
                    str(layout.root), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                outcome = await coord.hand_off(TaskSpec("llm", "main", "Create hello.py", ["hello.py"]))
                _out, err = await agent.communicate()
                assert agent.returncode == 0, err.decode()
                assert outcome.status == "completed", outcome.reason
                assert outcome.evidence.created == ["hello.py"]
                assert outcome.result is not None and "evil.py" in outcome.result.summary
                return outcome

        outcome = asyncio.run(run())
    # The step's commit (built by Conductor from the verified tree) holds hello.py and nothing else new.
    show = subprocess.run(["git", "show", "--name-status", "--format=", outcome.commit], cwd=layout.root,
                          capture_output=True, text=True, check=True).stdout.split()
    assert show == ["A", "hello.py"]
    blob = subprocess.run(["git", "show", f"{outcome.commit}:hello.py"], cwd=layout.root, capture_output=True,
                          text=True, check=True).stdout
    assert blob == "print('hello')\n"


def test_llm_agent_answers_a_plan_task(project: ProjectLayout) -> None:
    layout = project
    plan = {"contract_version": "1.0", "goal": "hello", "steps": [
        {"id": "step_001", "title": "Add hello", "instruction": "Create hello.py", "allowed_files": ["hello.py"]}]}
    with ScriptedOpenAIServer() as server:
        server.add(plan, purpose="handoff-plan")
        env = clean_env(CONDUCTOR_API_KEY="test-key", CONDUCTOR_LLM_BASE_URL=server.base_url)

        async def run():
            async with HandoffCoordinator(layout) as coord:
                agent = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "conductor", "agent", "--once", "--idle-exit", "20", "--root",
                    str(layout.root), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                outcome = await coord.hand_off(TaskSpec("llm", "plan", "Plan: say hello", [], kind="plan"))
                await agent.communicate()
                return outcome

        outcome = asyncio.run(run())
    assert outcome.status == "completed", outcome.reason
    assert outcome.result is not None and outcome.result.plan == plan
