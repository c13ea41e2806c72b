"""Conductor learns: a step that failed before starts with lower confidence in the next plan,
and its repair is offered the fix that worked last time (from .conductor/history.db)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.engine.support import conductor, conductor_env, make_project

POLICY = """\
verification:
  - name: compiles
    run: python -m compileall -q .
    timeout_seconds: 60
"""
PLAN = {"goal": "Add the beta module", "strategy": "default", "steps": [
    {"id": "step_001", "title": "beta module", "instruction": "Do BETA-ONE: write the beta module in beta.py.",
     "allowed_files": ["beta.py"], "estimated_confidence": 0.9}]}


def confidence_of(root: Path, plan_id: str) -> dict:
    events = json.loads(conductor("events", "--json", "--plan", plan_id, "--type", "step.confidence", cwd=root).stdout)
    return events[0]["data"]["confidence"]


def test_a_repeated_failure_lowers_confidence_and_the_past_fix_reaches_the_repair(tmp_path: Path, openai_server):
    openai_server.add(PLAN, purpose="plan", times=None)
    openai_server.add({"files": [{"path": "beta.py", "content": "def broken(:\n"}], "summary": "first try"},
                      purpose="edit", match="BETA-ONE", times=None)
    openai_server.add({"instruction": "Do BETA-FIXED: write beta.py with valid Python syntax.",
                       "allowed_files": ["beta.py"], "rationale": "it did not compile"}, purpose="repair", times=None)
    openai_server.add({"files": [{"path": "beta.py", "content": "def beta():\n    return 2\n"}], "summary": "ok"},
                      purpose="edit", match="BETA-FIXED", times=None)
    root = make_project(tmp_path / "proj", POLICY)
    env = conductor_env(openai_server.base_url)

    first = conductor("build", "Add the beta module", "--json", cwd=root, env=env)
    assert first.returncode == 0, first.stderr
    first_plan = json.loads(first.stdout)["plan_id"]
    repairs = [r for r in openai_server.chat_requests if r.purpose == "repair"]
    assert len(repairs) == 1 and "no similar failure on record" in repairs[0].last_user_message

    (root / "beta.py").unlink()
    conductor_git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    import subprocess

    subprocess.run([*conductor_git, "commit", "-qam", "start over"], cwd=root, check=True)
    second = conductor("build", "Add the beta module", "--json", cwd=root, env=env)
    assert second.returncode == 0, second.stderr
    second_plan = json.loads(second.stdout)["plan_id"]

    before, after = confidence_of(root, first_plan), confidence_of(root, second_plan)
    history_before = next(f for f in before["factors"] if f["name"] == "history")
    history_after = next(f for f in after["factors"] if f["name"] == "history")
    assert history_after["value"] < history_before["value"]
    assert after["score"] < before["score"]
    assert "similar" in history_after["detail"]

    repairs = [r for r in openai_server.chat_requests if r.purpose == "repair"]
    assert len(repairs) == 2
    assert "BETA-FIXED" in repairs[1].last_user_message, "the past fix was not offered to the repair"
    events = json.loads(conductor("events", "--json", "--plan", second_plan, "--type", "step.repair_planned",
                                  cwd=root).stdout)
    assert events[0]["data"]["similar_fixes"][0]["fix_instruction"].startswith("Do BETA-FIXED")
