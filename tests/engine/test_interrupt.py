"""Ctrl-C halts a plan cleanly (the halt is journaled) and `conductor resume` picks it up."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from tests.engine.support import conductor, conductor_env, make_project, start, wait_for


def test_ctrl_c_halts_cleanly_and_resume_finishes_the_plan(tmp_path: Path):
    root = make_project(tmp_path / "proj", "", mode="handoff")
    env = conductor_env(None, key=None)
    engine = start("build", "Create a greeting module with a test", cwd=root, env=env)
    handoff = root / ".conductor" / "handoff"
    wait_for(lambda: list(handoff.glob("plan_*/fork_main/pending/step_000.task.json")), timeout=60)
    engine.send_signal(signal.SIGINT)
    _, err = engine.communicate(timeout=60)
    assert engine.returncode == 1, err
    assert "halting cleanly" in err
    events = json.loads(conductor("events", "--json", cwd=root).stdout)
    assert events[-1]["type"] == "plan.halted" and "resume" in events[-1]["data"]["reason"]
    assert conductor("verify", cwd=root).returncode == 0

    agent = start("agent", "--command", f"{sys.executable} -m conductor.demo.agent", "--idle-exit", "30", cwd=root,
                  env=env)
    try:
        resumed = conductor("resume", "--json", cwd=root, env=env, timeout=120)
    finally:
        agent.kill()
        agent.communicate()
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["outcome"] == "completed"
    assert (root / "hello.py").is_file()
