"""An unreachable model endpoint, or one that answers 5xx to every retry, halts the plan
resumably — it is not the step's failure: nothing is failed or repaired, and `conductor resume`
with the endpoint back completes the plan, each step done once."""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path

from tests.engine.support import conductor, conductor_env, make_project

PLAN = {"goal": "Add the beta module", "strategy": "default", "steps": [
    {"id": "step_001", "title": "beta module", "instruction": "Do BETA-ONE: write beta.py.",
     "allowed_files": ["beta.py"], "estimated_confidence": 0.95}]}
EDIT = {"files": [{"path": "beta.py", "content": "BETA = 1\n"}], "summary": "beta"}


def closed_port() -> str:
    """A loopback URL nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def counts(root: Path) -> Counter[tuple[str, str | None]]:
    events = json.loads(conductor("events", "--json", cwd=root).stdout)
    return Counter((e["type"], e["data"].get("step_id")) for e in events)


def test_an_unreachable_endpoint_halts_the_plan_and_resume_completes_it(tmp_path: Path, openai_server):
    root = make_project(tmp_path / "proj")
    down = conductor("build", "Add the beta module", "--json", cwd=root, env=conductor_env(closed_port()))
    assert down.returncode == 1, down.stderr
    assert "Traceback" not in down.stderr, down.stderr
    summary = json.loads(down.stdout)
    assert summary["outcome"] == "halted", summary
    status = json.loads(conductor("status", "--json", cwd=root).stdout)["plans"][0]
    assert status["state"] == "halted" and "could not reach" in status["halted_reason"]
    assert "conductor resume" in status["halted_reason"]

    openai_server.add(PLAN, purpose="plan", times=None)
    openai_server.add(EDIT, purpose="edit", match="BETA-ONE", times=None)
    up = conductor("resume", "--json", cwd=root, env=conductor_env(openai_server.base_url))
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["outcome"] == "completed"
    assert (root / "beta.py").read_text() == "BETA = 1\n"


def test_repeated_5xx_while_a_step_runs_halt_without_failing_it_and_resume_completes(tmp_path: Path, openai_server):
    openai_server.add(PLAN, purpose="plan", times=None)
    openai_server.add(status=503, purpose="edit", times=None, error_message="overloaded")
    root = make_project(tmp_path / "proj")
    env = conductor_env(openai_server.base_url)
    down = conductor("build", "Add the beta module", "--json", cwd=root, env=env)
    assert down.returncode == 1, down.stderr
    assert "Traceback" not in down.stderr, down.stderr
    assert json.loads(down.stdout)["outcome"] == "halted"
    seen = counts(root)
    assert seen[("plan.halted", None)] == 1 and not seen[("step.failed", "step_001")]
    assert not [r for r in openai_server.chat_requests if r.purpose == "repair"], "the endpoint's fault was repaired"
    halted = json.loads(conductor("status", "--json", cwd=root).stdout)["plans"][0]["halted_reason"]
    assert "HTTP 503" in halted, halted

    openai_server.reset()
    openai_server.add(PLAN, purpose="plan", times=None)
    openai_server.add(EDIT, purpose="edit", match="BETA-ONE", times=None)
    up = conductor("resume", "--json", cwd=root, env=env)
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["outcome"] == "completed"
    assert [r.purpose for r in openai_server.chat_requests] == ["edit"], "the recorded plan was asked for again"
    seen = counts(root)
    assert seen[("step.completed", "step_001")] == 1 and seen[("plan.merged", None)] == 1
    assert not seen[("step.failed", "step_001")]
    assert conductor("verify", cwd=root).returncode == 0
