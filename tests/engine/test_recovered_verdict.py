"""An engine that stops after the coordinator recorded a verdict (provenance, audit, verdict file) but
before the runner journaled it: `conductor resume` takes the verdict from the signed record instead of
issuing the step again."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conductor.engine.runner import PlanRunner, RunOptions
from conductor.project.layout import ProjectLayout
from tests.engine.support import conductor, conductor_env, make_project, start


class Crash(Exception):
    """Stands for the engine process dying at that very point."""


def test_a_verdict_recorded_before_the_engine_died_is_not_done_again(tmp_path: Path, monkeypatch):
    root = make_project(tmp_path / "proj", "", mode="handoff")
    env = conductor_env(None, key=None)
    agent = start("agent", "--command", f"{sys.executable} -m conductor.demo.agent", "--idle-exit", "120", cwd=root,
                  env=env)
    original = PlanRunner.append

    def dies_before_journaling_step_002(self, event_type, /, **data):
        if event_type == "step.verified" and data.get("step_id") == "step_002":
            raise Crash("killed")
        return original(self, event_type, **data)

    monkeypatch.setattr(PlanRunner, "append", dies_before_journaling_step_002)
    for name in ("GEMINI_API_KEY", "CONDUCTOR_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    runner = PlanRunner(ProjectLayout.at(root), "p0000001", RunOptions(goal="Create a greeting module with a test"))
    try:
        with pytest.raises(Crash):
            asyncio.run(runner.run())
        monkeypatch.setattr(PlanRunner, "append", original)
        verdicts = list(root.glob(".conductor/handoff/plan_p0000001/fork_main/verdicts/step_002.*.verdict.json"))
        assert len(verdicts) == 1, "the coordinator recorded step_002's verdict before the crash"
        resumed = conductor("resume", "--json", "--plan", "p0000001", cwd=root, env=env, timeout=180)
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["outcome"] == "completed"
    finally:
        agent.terminate()
        agent.communicate(timeout=30)
    events = json.loads(conductor("events", "--json", "--step", "step_002", "--fork", "main", cwd=root).stdout)
    kinds = [e["type"] for e in events]
    assert kinds.count("step.handed_off") == 1 and kinds.count("step.completed") == 1
    (verified,) = [e for e in events if e["type"] == "step.verified"]
    assert verified["data"]["recovered"] is True and verified["data"]["verdict"] == "pass"
    tree = subprocess.run(["git", "ls-tree", "-r", "--name-only", "HEAD"], cwd=root, capture_output=True,
                          text=True, check=True).stdout.split()
    assert "hello.py" in tree and "tests/test_hello.py" in tree
    assert conductor("verify", cwd=root).returncode == 0
