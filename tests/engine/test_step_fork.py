"""A step whose confidence is below `behavior.fork_below` forks mid-plan: two variants run at
once, each an attempt in a working copy of its own, and the one with the best evidence is merged into the
fork's branch; the other leaves nothing there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.engine.support import conductor, conductor_env, make_project

POLICY = """\
behavior:
  fork_below: 0.85
verification:
  - name: compiles
    run: python -m compileall -q .
    timeout_seconds: 60
"""


def test_a_low_confidence_step_runs_as_two_variants_and_the_passing_one_is_kept(tmp_path: Path, openai_server):
    openai_server.add({"goal": "Add gamma", "strategy": "default", "steps": [
        {"id": "step_001", "title": "sure thing", "instruction": "Do SURE-ONE.", "allowed_files": ["sure.py"],
         "estimated_confidence": 0.99},
        {"id": "step_002", "title": "risky thing", "instruction": "Do GAMMA-ONE.", "allowed_files": ["gamma.py"],
         "depends_on": ["step_001"], "estimated_confidence": 0.3}]}, purpose="plan")
    openai_server.add({"files": [{"path": "sure.py", "content": "S = 1\n"}], "summary": "sure"}, purpose="edit",
                      match="SURE-ONE")
    openai_server.add({"instruction": "Do GAMMA-ALT: a plain constant in gamma.py.", "allowed_files": ["gamma.py"],
                       "rationale": "simpler"}, purpose="repair")
    openai_server.add({"files": [{"path": "gamma.py", "content": "def g(:\n"}], "summary": "bold"}, purpose="edit",
                      match="GAMMA-ONE")
    openai_server.add({"files": [{"path": "gamma.py", "content": "G = 3\n"}], "summary": "plain"}, purpose="edit",
                      match="GAMMA-ALT")
    root = make_project(tmp_path / "proj", POLICY)
    proc = conductor("build", "Add gamma", "--json", cwd=root, env=conductor_env(openai_server.base_url))
    assert proc.returncode == 0, proc.stderr
    plan_id = json.loads(proc.stdout)["plan_id"]

    events = json.loads(conductor("events", "--json", "--plan", plan_id, cwd=root).stdout)
    forked = [e for e in events if e["type"] == "step.forked"]
    assert [e["data"]["step_id"] for e in forked] == ["step_002"], "only the low-confidence step forks"
    variants = forked[0]["data"]["variants"]
    assert [v["variant"] for v in variants] == ["main-step_002-v1", "main-step_002-v2"]
    chosen = next(e for e in events if e["type"] == "step.variant_chosen")
    assert chosen["data"]["variant"] == "main-step_002-v2"
    assert "other variant failed" in chosen["data"]["reason"]

    assert (root / "gamma.py").read_text() == "G = 3\n" and (root / "sure.py").is_file()
    branches = subprocess.run(["git", "branch", "--list", f"conductor/{plan_id}/*"], cwd=root, capture_output=True,
                              text=True).stdout.split()
    assert branches == [f"conductor/{plan_id}/main"]
    history = subprocess.run(["git", "log", "-p", f"conductor/{plan_id}/main"], cwd=root, capture_output=True,
                             text=True).stdout
    assert "def g(:" not in history, "the failed variant's edit never reached the fork"
    for sub in ("main-step_002-v1", "main-step_002-v2"):
        assert (root / ".conductor" / "handoff" / f"plan_{plan_id}" / f"fork_{sub}" / "audit.log").is_file()
    assert (root / ".conductor" / "handoff" / f"plan_{plan_id}" / "fork_main-step_002-v1" / "failed" /
            "step_002.provenance.json").is_file()
    status = json.loads(conductor("status", "--json", "--plan", plan_id, cwd=root).stdout)
    (fork,) = status["plans"][0]["forks"]
    assert [(s["step_id"], s["state"]) for s in fork["steps"]] == [("step_001", "completed"), ("step_002", "completed")]
    assert conductor("verify", cwd=root).returncode == 0
