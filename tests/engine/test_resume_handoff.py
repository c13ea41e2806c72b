"""Handoff mode: when the engine dies while an agent works on a step, `conductor resume`
reattaches to that step and judges the agent's result; nothing is issued twice or lost."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from tests.engine.support import conductor, conductor_env, make_project, start, wait_for


def test_resume_reattaches_to_a_step_an_agent_is_still_working_on(tmp_path: Path):
    root = make_project(tmp_path / "proj", "", mode="handoff")
    env = conductor_env(None, key=None)
    agent = start("agent", "--command", f"sleep 2 && {sys.executable} -m conductor.demo.agent", "--idle-exit", "60",
                  "--name", "slow-agent", cwd=root, env=env)
    engine = start("build", "Create a greeting module with a test", "--json", cwd=root, env=env)
    try:
        handoff = root / ".conductor" / "handoff"
        wait_for(lambda: list(handoff.glob("plan_*/fork_main/in_progress/step_001.task.json")), timeout=90)
        os.kill(engine.pid, signal.SIGKILL)
        engine.wait(30)
        resumed = conductor("resume", "--json", cwd=root, env=env, timeout=180)
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["outcome"] == "completed"
    finally:
        for proc in (engine, agent):
            if proc.poll() is None:
                proc.kill()
            proc.communicate()

    (audit,) = handoff.glob("plan_*/fork_main/audit.log")
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    created = [r for r in records if r["event"] == "task.created" and r["task_id"] == "step_001"]
    verified = [r for r in records if r["event"] == "step.verified" and r["task_id"] == "step_001"]
    assert len(created) == 1, "step_001 was issued twice"
    assert len(verified) == 1 and verified[0]["verdict"] == "pass"
    events = json.loads(conductor("events", "--json", "--step", "step_001", "--fork", "main", cwd=root).stdout)
    assert [e["type"] for e in events].count("step.handed_off") == 1
    assert (root / "hello.py").is_file() and (root / "tests" / "test_hello.py").is_file()
    assert conductor("verify", cwd=root).returncode == 0
