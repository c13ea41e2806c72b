"""`conductor policy`: the effective policy of a project the real engine built, with its plan and step levels."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.fixtures import Built
from tests.support.projects import conductor


def test_policy_of_a_plan_made_by_make_demo(demo_project: Built) -> None:
    root, plan_id = demo_project.root, demo_project.plan_id
    assert (root / ".conductor" / "plans" / plan_id / "main.plan.json").is_file()  # where the runner wrote it
    proc = conductor("policy", "--plan", plan_id, "--show-origin", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "greeting test:" in proc.stdout and "(project .conductor/policy.yaml:" in proc.stdout
    step = conductor("policy", "--plan", plan_id[:4], "--step", "step_002", "--json", cwd=root)
    assert step.returncode == 0, step.stderr
    assert json.loads(step.stdout)["behavior"]["max_diff_lines"]["origin"]["level"] == "project"


def test_plan_and_step_levels_are_merged_with_their_origins(mixed_project: Built) -> None:
    root, plan_id = mixed_project.root, mixed_project.plan_id
    proc = conductor("policy", "--plan", plan_id, "--step", "step_004", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    verification = json.loads(proc.stdout)["verification"]
    assert [(v["value"]["name"], v["origin"]["level"]) for v in verification] == [
        ("project check", "project"), ("plan check", "plan"), ("step check", "step")]
    assert {v["origin"]["file"] for v in verification[1:]} == {f".conductor/plans/{plan_id}/main.plan.json"}


def test_unknown_plans_and_steps_are_named(mixed_project: Built) -> None:
    root, plan_id = mixed_project.root, mixed_project.plan_id
    nope = conductor("policy", "--plan", "nope", cwd=root)
    assert nope.returncode == 1 and "no plan 'nope'" in nope.stderr and plan_id in nope.stderr
    step = conductor("policy", "--plan", plan_id, "--step", "step_099", cwd=root)
    assert step.returncode == 1 and "has no step 'step_099'" in step.stderr
    assert "Traceback" not in nope.stderr + step.stderr


def test_a_100k_constraint_policy_is_merged_whole_in_order_with_each_line(tmp_path: Path) -> None:
    """Issue 13: the merge is linear. It was quadratic (11,111 constraints took 7–16 s), so 100,000 would
    take hours and the command's deadline below would end the test. How fast it is beside `validate` of
    the same file is measured by `bench/bench_validation.py`, not asserted here."""
    root = tmp_path / "proj"
    root.mkdir()
    assert conductor("init", ".", cwd=root).returncode == 0
    lines = ["global_constraints:"] + [f"  - c{i}" for i in range(100_000)] + ["  - c7"]  # a repeat: kept once
    text = "\n".join(lines) + "\nfile_rules:\n  protected_patterns:\n" + "".join(
        f"    - p{i}/*\n" for i in range(2_000))
    assert len(text.encode()) < 2 * 1024 * 1024
    (root / ".conductor" / "policy.yaml").write_text(text, encoding="utf-8")

    proc = conductor("policy", "--json", cwd=root, timeout=300)
    assert proc.returncode == 0, proc.stderr
    merged = json.loads(proc.stdout)
    constraints = merged["global_constraints"]
    assert [c["value"] for c in constraints] == [f"c{i}" for i in range(100_000)]
    assert constraints[99_999]["origin"] == {"level": "project", "file": ".conductor/policy.yaml", "line": 100_001}
    patterns = [p["value"] for p in merged["file_rules"]["protected_patterns"] if p["origin"]["level"] == "project"]
    assert patterns == [f"p{i}/*" for i in range(2_000)]
