"""Task files: schema-valid, policy-merged, checksummed, atomically written, never colliding."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conductor.contract.checksum import task_checksum
from conductor.handoff.claim import iter_pending
from conductor.handoff.tasks import TaskExists, TaskSpec, write_task
from conductor.policy import load_project_policy
from conductor.project.layout import ProjectLayout
from conductor.validation import validate_file


def test_task_carries_effective_policy_and_checksum(project: ProjectLayout) -> None:
    layout = project
    policy = load_project_policy(layout.root)
    written = write_task(layout, TaskSpec("plan_a1b2", "fork_main", "Add hello", ["hello.py"],
                                          constraints=["Use type hints"]), policy, ".")
    assert written.path == layout.root / ".conductor/handoff/plan_a1b2/fork_main/pending/step_001.task.json"
    body = json.loads(written.path.read_text())
    assert body["plan_id"] == "a1b2" and body["fork_id"] == "main"
    assert body["constraints"] == ["Keep changes small", "Use type hints"]
    assert body["protected_patterns"] == [".conductor/**", ".git/**", "*.lock"]
    assert (body["max_diff_lines"], body["timeout_seconds"], body["workspace"]) == (50, 30, ".")
    assert body["checksum"] == task_checksum(body)
    assert [d for d in validate_file(written.path) if d.severity == 1] == []
    assert not [p for p in written.path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_ids_and_forks_do_not_collide(project: ProjectLayout) -> None:
    layout = project
    policy = load_project_policy(layout.root)
    a = write_task(layout, TaskSpec("a1b2", "x", "one", ["a"]), policy, ".")
    b = write_task(layout, TaskSpec("a1b2", "y", "two", ["b"]), policy, ".")
    c = write_task(layout, TaskSpec("a1b2", "x", "three", ["c"]), policy, ".")
    assert (a.task.task_id, b.task.task_id, c.task.task_id) == ("step_001", "step_001", "step_002")
    assert a.path != b.path
    assert sorted((t.fork_id, t.task_id) for t in iter_pending(layout)) == [
        ("x", "step_001"), ("x", "step_002"), ("y", "step_001")]
    with pytest.raises(TaskExists):
        write_task(layout, TaskSpec("a1b2", "x", "again", ["a"], task_id="step_001"), policy, ".")
    claimed = layout.state_dir("a1b2", "x", "in_progress") / "step_001.task.json"
    a.path.rename(claimed)
    with pytest.raises(TaskExists):
        write_task(layout, TaskSpec("a1b2", "x", "again", ["a"], task_id="step_001"), policy, ".")


def test_retry_of_failed_step_archives_the_attempt(project: ProjectLayout) -> None:
    layout = project
    policy = load_project_policy(layout.root)
    first = write_task(layout, TaskSpec("p", "f", "one", ["a"]), policy, ".")
    failed = layout.state_dir("p", "f", "failed")
    failed.mkdir(parents=True, exist_ok=True)
    first.path.rename(failed / first.path.name)
    second = write_task(layout, TaskSpec("p", "f", "one again", ["a"], task_id="step_001"), policy, ".")
    assert second.path.exists()
    assert (failed / "attempts" / "1" / "step_001.task.json").exists()
    # A step that completed but whose verdict the engine lost is issued again: the old attempt is kept.
    completed = layout.state_dir("p", "f", "completed")
    second.path.rename(completed / second.path.name)
    third = write_task(layout, TaskSpec("p", "f", "one more", ["a"], task_id="step_001"), policy, ".")
    assert third.path.exists()
    assert (completed / "attempts" / "1" / "step_001.task.json").exists()


RACE = textwrap.dedent("""
    import sys, time
    from conductor.handoff.claim import claim_next
    from conductor.project.layout import ProjectLayout
    layout = ProjectLayout.at(sys.argv[1])
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    while (path := claim_next(layout)) is not None:
        print(path.name)
""")


def test_racing_processes_claim_each_task_exactly_once(project: ProjectLayout) -> None:
    import time

    layout = project
    policy = load_project_policy(layout.root)
    for i in range(60):
        write_task(layout, TaskSpec("p", "race", f"task {i}", ["a"]), policy, ".")
    start = str(time.time() + 1.0)
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(layout.root), start], stdout=subprocess.PIPE,
                              text=True) for _ in range(6)]
    claimed = [line for p in procs for line in p.communicate(timeout=30)[0].split()]
    assert sorted(claimed) == sorted(f"step_{i:03d}.task.json" for i in range(1, 61))
    assert len(set(claimed)) == 60
