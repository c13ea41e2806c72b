"""The whole loop in llm mode, through the real `openai` client against a real HTTP server on
loopback: explore with 3 forks on 3 real branches (each step attempt in a working copy of its own), a failing
step repaired, a LOW-confidence
step held until approved, the winner merged, provenance verifiable, and the key never written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.engine.support import (
    TEST_KEY,
    conductor,
    conductor_env,
    files_containing,
    make_project,
    start,
    status,
    wait_for,
)
from tests.support.openai_server import ScriptedOpenAIServer

POLICY = """\
global_constraints:
  - Keep changes small
file_rules:
  protected_patterns: ['*.lock']
behavior:
  max_diff_lines: 200
  approval_below: 0.75
  caution_below: 0.9
verification:
  - name: compiles
    run: python -m compileall -q .
    timeout_seconds: 60
"""


def step(n: int, marker: str, files: list[str], confidence: float, depends: list[str] | None = None) -> dict:
    return {"id": f"step_00{n}", "title": f"{marker} step", "instruction": f"Do {marker}.",
            "allowed_files": files, "depends_on": depends or [], "rationale": f"{marker} is needed",
            "estimated_confidence": confidence}


def script(server: ScriptedOpenAIServer) -> None:
    server.add({"strategies": [{"name": "alpha", "summary": "two small modules"},
                               {"name": "beta", "summary": "one module, written fast"},
                               {"name": "gamma", "summary": "a bold rewrite"}]}, purpose="strategies")
    server.add({"goal": "Add greeting modules", "strategy": "alpha", "steps": [
        step(1, "ALPHA-ONE", ["alpha.py"], 0.95),
        step(2, "ALPHA-TWO", ["alpha_test.py"], 0.95, ["step_001"])]}, purpose="plan", match="Strategy: alpha")
    server.add({"goal": "Add greeting modules", "strategy": "beta", "steps": [
        step(1, "BETA-ONE", ["beta.py"], 0.95)]}, purpose="plan", match="Strategy: beta")
    server.add({"goal": "Add greeting modules", "strategy": "gamma", "steps": [
        step(1, "GAMMA-ONE", ["gamma.py"], 0.1)]}, purpose="plan", match="Strategy: gamma")
    server.add({"files": [{"path": "alpha.py", "content": "def hello():\n    return 'hi'\n"}], "summary": "alpha"},
               purpose="edit", match="ALPHA-ONE")
    server.add({"files": [{"path": "alpha_test.py", "content": "from alpha import hello\nassert hello()\n"},
                          {"path": "poetry.lock", "content": "sneaky\n"}], "summary": "alpha tests"},
               purpose="edit", match="ALPHA-TWO")
    # beta's first edit does not compile: verification fails, the step is repaired, the fix compiles
    server.add({"files": [{"path": "beta.py", "content": "def broken(:\n"}], "summary": "beta"},
               purpose="edit", match="BETA-ONE")
    server.add({"instruction": "Do BETA-FIXED: write beta.py with valid syntax.", "allowed_files": ["beta.py"],
                "rationale": "the first attempt did not compile"}, purpose="repair")
    server.add({"files": [{"path": "beta.py", "content": "def beta():\n    return 2\n"}], "summary": "fixed"},
               purpose="edit", match="BETA-FIXED")
    server.add({"files": [{"path": "gamma.py", "content": "G = 3\n"}], "summary": "gamma"}, purpose="edit",
               match="GAMMA-ONE")


def test_explore_with_three_forks_repairs_holds_for_approval_and_merges(tmp_path: Path, openai_server):
    script(openai_server)
    root = make_project(tmp_path / "proj", POLICY)
    env = conductor_env(openai_server.base_url)
    proc = start("explore", "Add greeting modules", "--forks", "3", "--json", cwd=root, env=env)
    try:
        def gamma_waiting() -> bool:
            plans = status(root)["plans"]
            forks = {f["fork_id"]: f for p in plans for f in p["forks"]}
            steps = forks.get("f3", {}).get("steps", [])
            return any(s["step_id"] == "step_001" and s["state"] == "waiting_approval" for s in steps)

        wait_for(gamma_waiting, timeout=90)
        approved = conductor("approve", "step_001", "--fork", "f3", cwd=root)
        assert approved.returncode == 0, approved.stderr
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["outcome"] == "completed" and summary["merged"] is True
    plan_id = summary["plan_id"]

    # three branches, no shared worktree; the winner merged into the user's branch; no working copy left behind
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=root, capture_output=True, text=True).stdout
    branches = subprocess.run(["git", "branch", "--list", f"conductor/{plan_id}/*"], cwd=root,
                              capture_output=True, text=True).stdout.split()
    assert sorted(b for b in branches if b.startswith("conductor/")) == [
        f"conductor/{plan_id}/f1", f"conductor/{plan_id}/f2", f"conductor/{plan_id}/f3"]
    assert worktrees.count("\n") == 1 and not (root / ".conductor" / "attempts" / plan_id).exists()
    scores = {s["fork_id"]: s for s in summary["scores"]}
    assert set(scores) == {"f1", "f2", "f3"} and all(s["eligible"] for s in scores.values())
    assert scores["f2"]["parts"]["repairs"]["value"] == 0.5
    winner = summary["winner"]
    assert scores[winner]["score"] == max(s["score"] for s in scores.values())
    merged_file = {"f1": "alpha.py", "f2": "beta.py", "f3": "gamma.py"}[winner]
    assert (root / merged_file).is_file()

    # the model proposed poetry.lock (protected, outside allowed_files): never written anywhere
    assert not list(root.rglob("poetry.lock"))

    events = json.loads(conductor("events", "--json", "--plan", plan_id, cwd=root).stdout)
    types = [(e["type"], e["data"].get("fork_id"), e["data"].get("step_id")) for e in events]
    assert ("step.failed", "f2", "step_001") in types
    assert ("step.repair_planned", "f2", "step_001") in types
    assert ("step.waiting_approval", "f3", "step_001") in types
    assert ("step.approved", "f3", "step_001") in types
    assert ("plan.merged", winner, None) in types
    completed = [t for t in types if t[0] == "step.completed"]
    assert sorted(completed) == sorted({c for c in completed}), "a step completed twice"

    explained = conductor("explain", "step_001", "--fork", "f2", "--plan", plan_id, cwd=root)
    assert explained.returncode == 0 and "repair" in explained.stdout.lower()

    assert conductor("verify", cwd=root).returncode == 0
    assert files_containing(root, TEST_KEY) == []
    assert TEST_KEY not in out + err
    sent = [r for r in openai_server.chat_requests]
    auth = [{k.lower(): v for k, v in r.headers.items()}.get("authorization") for r in sent]
    assert sent and all(a == f"Bearer {TEST_KEY}" for a in auth)
    assert all(TEST_KEY not in json.dumps(r.body) for r in sent)

    # replay: the state at any event, and planning re-run from the journaled replies, offline
    waiting = next(e for e in events if e["type"] == "step.waiting_approval")
    at = json.loads(conductor("replay", "--plan", plan_id, "--to", str(waiting["seq"]), "--json", cwd=root).stdout)
    assert at["state"]["forks"]["f3"]["steps"]["step_001"]["state"] == "waiting_approval"
    assert at["state"]["status"] == "running" and at["journal_ok"]
    calls_before = len(openai_server.chat_requests)
    again = conductor("replay", "--plan", plan_id, "--rerun-planning", "--json", cwd=root, env=conductor_env(None))
    replanned = json.loads(again.stdout)["replanned"]
    assert [(r["fork_id"], r["replanned"], r["identical"]) for r in sorted(replanned, key=lambda r: r["fork_id"])] == [
        ("f1", True, True), ("f2", True, True), ("f3", True, True)]
    assert len(openai_server.chat_requests) == calls_before, "replay must not call the model"
