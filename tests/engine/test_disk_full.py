"""A full disk is a halt, not a failure: on a real small tmpfs (mounted by the test, as root),
`init` and `build` on a full disk answer in one line with exit 3; a disk that fills up while a
plan runs — at a log append, or between a passing verdict and the step's commit — halts the plan
with a one-line reason and nothing torn; once space is freed `conductor resume` completes the
verified work without doing anything twice."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.engine.support import conductor, conductor_env, start, wait_for

EXIT_UNUSABLE = 3
CONFIG = "mode: handoff\nplanner: handoff\nforks: 1\n"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs of our own, so filling it harms nothing else."""
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI runs as root; mounting a tmpfs needs root")
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Take every block of ``disk`` but ``leave`` bytes (a ballast file outside the project)."""
    ballast = disk / "ballast.bin"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (1 << 20, 1 << 12):
            while True:
                try:
                    os.write(fd, b"\0" * chunk)
                except OSError:
                    break
    finally:
        os.close(fd)
    size = ballast.stat().st_size
    os.truncate(ballast, max(0, size - leave))
    return ballast


def free(disk: Path) -> None:
    (disk / "ballast.bin").unlink()


def make_project(root: Path) -> Path:
    root.mkdir()
    assert conductor("init", ".", cwd=root).returncode == 0
    (root / ".conductor" / "config.yaml").write_text(CONFIG)
    (root / "README.md").write_text("# sample\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "s"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    return root


class Agent:
    """An agent working by hand through the files, so the test decides when the disk fills."""

    def __init__(self, root: Path) -> None:
        self.handoff = root / ".conductor" / "handoff"

    def claim(self, step: str) -> tuple[dict[str, Any], Path]:
        pending = wait_for(lambda: list(self.handoff.glob(f"plan_*/fork_main/pending/{step}.task.json")), timeout=60)[0]
        claimed = pending.parent.parent / "in_progress" / pending.name
        os.rename(pending, claimed)
        return json.loads(claimed.read_text()), claimed

    def prepare(self, task: dict[str, Any], claimed: Path, files: dict[str, bytes],
                plan: dict[str, Any] | None = None) -> Path:
        """Do the work and write the result beside its final name (published later by :meth:`publish`)."""
        for rel, data in files.items():
            (Path(task["workspace"]) / rel).write_bytes(data)
        body = {"contract_version": "2.0", "task_id": task["task_id"], "nonce": task["nonce"], "status": "completed",
                "files_changed": sorted(files), "summary": "done", "executor": "test-agent"}
        if plan is not None:
            body["plan"] = plan
        staged = claimed.parent.parent / f".{task['task_id']}.result.staged"
        staged.write_text(json.dumps(body))
        return staged

    @staticmethod
    def publish(staged: Path, claimed: Path) -> None:
        os.rename(staged, claimed.with_name(claimed.name.replace(".task.json", ".result.json")))

    def audited(self, event: str, step: str) -> bool:
        return any(json.loads(line).get("event") == event and json.loads(line).get("task_id") == step
                   for log in self.handoff.glob("plan_*/fork_main/audit.log") for line in log.read_text().splitlines())

    def plan(self, allowed: str) -> None:
        task, claimed = self.claim("step_000")
        plan = {"goal": "data", "strategy": "default", "steps": [
            {"id": "step_001", "title": "write the data", "instruction": f"Write {allowed}.",
             "allowed_files": [allowed], "estimated_confidence": 0.95}]}
        self.publish(self.prepare(task, claimed, {}, plan), claimed)


def events(root: Path) -> list[dict[str, Any]]:
    proc = conductor("events", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_one_line(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert len([line for line in stderr.splitlines() if line.startswith("conductor: ")]) == 1, stderr


def test_init_on_a_full_disk_says_where_in_one_line_and_exits_3(disk: Path):
    fill(disk)
    proc = conductor("init", "proj", cwd=disk)
    assert proc.returncode == EXIT_UNUSABLE, proc.stdout + proc.stderr
    assert_one_line(proc.stderr)
    assert proc.stderr.startswith(f"conductor: disk full writing {disk / 'proj'}"), proc.stderr
    assert proc.stderr.rstrip().endswith("free some space, then run `conductor init` again"), proc.stderr
    assert not list((disk / "proj").rglob(".*.tmp")), "a temporary file was left behind"

    free(disk)
    again = conductor("init", "proj", cwd=disk)
    assert again.returncode == 0, again.stderr
    assert conductor("validate", ".conductor", cwd=disk / "proj").returncode == 0


def test_build_on_a_full_disk_says_where_in_one_line_and_exits_3(disk: Path):
    root = make_project(disk / "proj")
    fill(disk)
    proc = conductor("build", "Anything", cwd=root, env=conductor_env(None, key=None))
    assert proc.returncode == EXIT_UNUSABLE, proc.stdout + proc.stderr
    assert_one_line(proc.stderr)
    assert f"disk full writing {root}" in proc.stderr and "then `conductor resume`" in proc.stderr, proc.stderr


def test_a_disk_full_at_a_log_append_halts_and_resume_completes(disk: Path):
    """The agent's first result is invalid in 100 places: the audit line naming them needs new blocks
    the full disk no longer has."""
    root = make_project(disk / "proj")
    env = conductor_env(None, key=None)
    agent = Agent(root)
    engine = start("build", "Write the data", "--json", cwd=root, env=env)
    agent.plan("data.txt")
    task, claimed = agent.claim("step_001")
    wait_for(lambda: agent.audited("task.claimed", "step_001"))
    invalid = claimed.parent.parent / ".invalid.staged"
    invalid.write_text(json.dumps({"contract_version": "2.0", "task_id": "step_001", "nonce": task["nonce"],
                                   "status": "completed", "files_changed": list(range(100)), "executor": "t"}))
    fill(disk)
    Agent.publish(invalid, claimed)
    out, err = engine.communicate(timeout=120)
    assert engine.returncode == 1, err
    assert "Traceback" not in err, err
    summary = json.loads(out)
    assert summary["outcome"] == "halted", summary
    notes = summary["notes"]
    assert any(n.startswith("disk full writing ") and "/audit.log; at least" in n for n in notes), notes

    free(disk)
    assert conductor("verify", cwd=root).returncode == 0, "a log was torn"
    assert not agent.audited("result.invalid", "step_001"), "the line that did not fit was left in the log"
    Agent.publish(agent.prepare(task, claimed, {"data.txt": b"the data\n"}), claimed)
    resumed = conductor("resume", "--json", cwd=root, env=env, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["outcome"] == "completed"
    assert (root / "data.txt").read_bytes() == b"the data\n"
    counts = Counter((e["type"], e["data"].get("step_id")) for e in events(root))
    assert counts[("step.handed_off", "step_001")] == 1, "the step was handed off again"
    assert counts[("step.completed", "step_001")] == 1 and counts[("plan.merged", None)] == 1
    assert conductor("verify", cwd=root).returncode == 0


def test_a_disk_full_between_the_verdict_and_the_commit_halts_and_resume_completes(disk: Path):
    root = make_project(disk / "proj")
    env = conductor_env(None, key=None)
    agent = Agent(root)
    engine = start("build", "Write the data", "--json", cwd=root, env=env)
    agent.plan("data.bin")
    task, claimed = agent.claim("step_001")
    data = os.urandom(768 * 1024)  # its git object cannot be compressed below the room left
    staged = agent.prepare(task, claimed, {"data.bin": data})
    wait_for(lambda: agent.audited("task.claimed", "step_001"))
    fill(disk, leave=256 * 1024)  # room for the result's audit line, not for the step's commit
    Agent.publish(staged, claimed)
    out, err = engine.communicate(timeout=120)
    assert engine.returncode == 1, err
    assert "Traceback" not in err, err
    summary = json.loads(out)
    assert summary["outcome"] == "halted", summary
    reason = next(n for n in summary["notes"] if n.startswith("disk full writing "))
    assert "/.git/objects/" in reason and "then `conductor resume`" in reason
    halted = [e for e in events(root) if e["type"] == "plan.halted"]
    assert len(halted) == 1 and halted[0]["data"]["reason"].startswith("disk full writing "), halted
    assert claimed.exists(), "the verified attempt was moved away before it was recorded"

    free(disk)
    assert subprocess.run(["git", "fsck", "--no-progress"], cwd=root, capture_output=True).returncode == 0
    resumed = conductor("resume", "--json", cwd=root, env=env, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["outcome"] == "completed"
    assert (root / "data.bin").read_bytes() == data, "the verified work was not merged"
    counts = Counter((e["type"], e["data"].get("step_id")) for e in events(root))
    assert counts[("step.handed_off", "step_001")] == 1, "the step was handed off again (the agent's work redone)"
    assert counts[("step.verified", "step_001")] == 1 and counts[("step.completed", "step_001")] == 1
    assert counts[("plan.merged", None)] == 1
    assert conductor("verify", cwd=root).returncode == 0
    assert not list((root / ".git" / "objects").rglob("tmp_obj_*")), "a half-written git object was left behind"
