"""Honest agents side by side: independent steps of one fork never see each other's files, index or locks.

Each attempt has its own working copy; Conductor merges each verified step into the fork. Ten builds
of 24 independent steps and one that depends on them all, with four agents racing: every build
completes, every step is handed off and completed exactly once, and each step's commit holds exactly
its own file. Two parallel steps that change the same line: the second is refused with a named
integration conflict and its repair completes.
"""

from __future__ import annotations

import collections
from pathlib import Path

from tests.security.support import build, git, make_project, tree

RUNS = 10
WIDTH = 24


def fan_in_plan() -> list[dict]:
    steps = [{"id": f"step_{i:03d}", "instruction": f"write f{i}.txt: content of step {i}", "allowed": [f"f{i}.txt"]}
             for i in range(1, WIDTH + 1)]
    steps.append({"id": f"step_{WIDTH + 1:03d}", "instruction": "write final.txt: all done",
                  "allowed": ["final.txt"], "depends_on": [s["id"] for s in steps]})
    return steps


def test_four_agents_and_twenty_four_independent_steps_ten_times(tmp_path: Path) -> None:
    steps = fan_in_plan()
    for n in range(RUNS):
        root = make_project(tmp_path / f"run{n}", parallel=8)
        run = build(root, steps, agents=4)
        assert run.summary["outcome"] == "completed" and run.summary["merged"], (n, run.summary)
        handed = collections.Counter(e["data"]["step_id"] for e in run.events if e["type"] == "step.handed_off")
        completed = collections.Counter(e["data"]["step_id"] for e in run.events if e["type"] == "step.completed")
        assert set(handed.values()) == {1} and set(completed.values()) == {1} and len(completed) == WIDTH + 1, n
        assert not [e for e in run.events if e["type"] == "step.failed"], n
        for event in run.events:
            if event["type"] == "step.verified" and event["data"]["step_id"] != "step_000":
                step = next(s for s in steps if s["id"] == event["data"]["step_id"])
                files = git(root, "show", "--name-only", "--format=", event["data"]["commit"]).split()
                assert files == step["allowed"], (n, step["id"], files)
        merged = tree(root)
        assert {f"f{i}.txt" for i in range(1, WIDTH + 1)} | {"final.txt"} <= set(merged)
        claims = collections.Counter(line.split()[1] for out in run.agents_output for line in out.splitlines()
                                     if line.startswith("claimed "))
        assert set(claims.values()) == {1} and len(claims) == WIDTH + 2, n  # the planning task too


def test_two_parallel_steps_on_the_same_line_give_a_named_conflict_that_a_repair_resolves(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", parallel=2)
    steps = [{"id": "step_001", "instruction": "write README.md: written by step one", "allowed": ["README.md"]},
             {"id": "step_002", "instruction": "write README.md: written by step two", "allowed": ["README.md"]}]
    run = build(root, steps, agents=2)
    causes = [e["data"] for e in run.events if e["type"] == "step.failed"]
    assert [c["cause"] for c in causes] == ["evidence/integration-conflict"], causes
    assert "README.md" in causes[0]["reason"]
    assert run.summary["outcome"] == "completed" and run.completed() == ["step_001", "step_002"]
    loser = causes[0]["step_id"]
    assert (root / "README.md").read_text() == f"written by step {'one' if loser == 'step_001' else 'two'}\n"
