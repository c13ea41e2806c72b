"""kill -9 the engine at 20 random points of an explore, then `conductor resume`: every run ends
in the same final state as an uninterrupted one, no step is completed twice, and every journal,
audit log and provenance chain still verifies."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.engine.support import conductor, conductor_env, make_project, start
from tests.support.openai_server import ScriptedOpenAIServer

KILL_POINTS = 20
WORKERS = 2  # kill points run two at a time
POLICY = """\
behavior:
  max_diff_lines: 200
verification:
  - name: compiles
    run: python -m compileall -q .
    timeout_seconds: 60
"""
STRATEGIES = ["alpha", "beta", "gamma"]


def script(server: ScriptedOpenAIServer) -> None:
    """Deterministic answers, reusable any number of times (a resumed run may ask again)."""
    server.add({"strategies": [{"name": n, "summary": f"the {n} way"} for n in STRATEGIES]}, purpose="strategies",
               times=None)
    for name in STRATEGIES:
        steps = [
            {"id": f"step_00{i}", "title": f"{name} part {i}", "instruction": f"Write {name.upper()}-{i}.",
             "allowed_files": [f"{name}_{i}.py"], "depends_on": [f"step_00{i - 1}"] if i > 1 else [],
             "estimated_confidence": 0.95}
            for i in (1, 2, 3)
        ]
        server.add({"goal": "Build parts", "strategy": name, "steps": steps}, purpose="plan",
                   match=f"Strategy: {name}", times=None)
        for i in (1, 2, 3):
            body = f"VALUE = {len(name) * 10 + i}\n" + "".join(f"# line {k}\n" for k in range(i * (len(name) - 3)))
            server.add({"files": [{"path": f"{name}_{i}.py", "content": body}], "summary": f"{name} {i}"},
                       purpose="edit", match=f"{name.upper()}-{i}.", times=None)


def final_state(root: Path) -> dict:
    """What must not depend on where the engine was killed: outcome, steps, merged tree."""
    data = json.loads(conductor("status", "--json", cwd=root).stdout)
    (plan,) = data["plans"]
    forks = {
        f["strategy"]: sorted((s["step_id"], s["state"]) for s in f["steps"]) for f in plan["forks"]
    }
    tree = subprocess.run(["git", "ls-tree", "-r", "HEAD"], cwd=root, capture_output=True, text=True).stdout
    merged = next(f["strategy"] for f in plan["forks"] if plan["merged"] and f["fork_id"] == plan["merged"]["fork_id"])
    return {"state": plan["state"], "outcome": plan["outcome"], "forks": forks, "merged": merged,
            "tree": sorted(line for line in tree.splitlines()
                           if ".gitignore" not in line and "trust.json" not in line)}  # each project has its own key


def completed_twice(root: Path) -> list[tuple[str, str]]:
    events = json.loads(conductor("events", "--json", "--type", "step.completed", cwd=root).stdout)
    seen: set[tuple[str, str]] = set()
    twice = []
    for e in events:
        key = (e["data"]["fork_id"], e["data"]["step_id"])
        if key in seen:
            twice.append(key)
        seen.add(key)
    return twice


def run_to_end(root: Path, env: dict[str, str]) -> None:
    """Resume until the plan has finished (a kill before the plan started means starting again)."""
    for _ in range(3):
        proc = conductor("resume", "--json", cwd=root, env=env, timeout=180)
        if proc.returncode == 0:
            return
        if "never started" in proc.stderr or "no plans yet" in proc.stderr:
            proc = conductor("explore", "Build parts", "--forks", "3", "--json", cwd=root, env=env, timeout=180)
            assert proc.returncode == 0, proc.stderr
            return
    raise AssertionError(f"resume did not finish: {proc.stdout}\n{proc.stderr}")


def crash_and_resume(root: Path, env: dict[str, str], delay: float) -> None:
    """One run: explore killed ``delay`` seconds in (if still running), then resumed to the end."""
    victim = start("explore", "Build parts", "--forks", "3", "--json", cwd=root, env=env)
    time.sleep(delay)
    if victim.poll() is None:
        os.kill(victim.pid, signal.SIGKILL)
    victim.wait(30)
    victim.communicate()
    run_to_end(root, env)


def test_kill_nine_at_random_points_then_resume_reaches_the_same_end(tmp_path: Path, openai_server):
    script(openai_server)
    env = conductor_env(openai_server.base_url)

    # Two runs side by side, as the kill points below run (two at a time, to keep the suite short):
    # the kill points are spread over the duration of a run under that load.
    references = [make_project(tmp_path / f"reference{i}" / "proj", POLICY) for i in range(WORKERS)]
    started = time.monotonic()
    runs = [start("explore", "Build parts", "--forks", "3", "--json", cwd=root, env=env) for root in references]
    for run in runs:
        _, err = run.communicate(timeout=180)
        assert run.returncode == 0, err
    duration = time.monotonic() - started
    expected = final_state(references[0])
    assert expected["outcome"] == "completed" and all(
        states == [("step_001", "completed"), ("step_002", "completed"), ("step_003", "completed")]
        for states in expected["forks"].values()
    )
    assert all(final_state(root) == expected for root in references[1:])

    rng = random.Random(20261126)
    points = sorted(rng.uniform(0.05, duration) for _ in range(KILL_POINTS))
    roots = [make_project(tmp_path / f"crash{n}" / "proj", POLICY) for n in range(KILL_POINTS)]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(lambda job: crash_and_resume(job[0], env, job[1]), zip(roots, points, strict=True)))
    for root, delay in zip(roots, points, strict=True):
        assert final_state(root) == expected, f"kill at {delay:.2f}s gave a different end"
        assert completed_twice(root) == [], f"kill at {delay:.2f}s: a step completed twice"
        verified = conductor("verify", cwd=root)
        assert verified.returncode == 0, f"kill at {delay:.2f}s: {verified.stdout}{verified.stderr}"
