"""Only regular files are read: a real `conductor build` whose agent leaves a FIFO, a symlink to
/dev/zero, a 5 GiB (sparse) file and a folder under the names of its results. Each is refused with
its reason (never opened for reading beyond its lstat, never read unbounded), the step fails at
its timeout saying why, and meanwhile an honest step of the same plan is judged and completed:
the coordinator was never blocked. A saved hand-off state replaced by a FIFO does not block a
resume either."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import require_tool
from tests.engine.support import conductor, conductor_env, start, wait_for

POLICY = "behavior:\n  timeout_seconds: 6\n  max_repairs: 0\n"
CONFIG = "mode: handoff\nplanner: handoff\nforks: 1\nmax_parallel_steps: 5\n"


def fifo(path: Path) -> None:
    os.mkfifo(path)


def dev_zero(path: Path) -> None:
    os.symlink("/dev/zero", path)


def huge(path: Path) -> None:
    with open(path, "wb") as fh:
        fh.truncate(5 << 30)  # sparse: no disk used, 5 GiB to whoever reads it


def folder(path: Path) -> None:
    path.mkdir()
    (path / "inside.json").write_text("{}")


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "step_001": (fifo, "result/not-regular: step_001.result.json is a named pipe (FIFO), not a regular file"),
    "step_002": (dev_zero, "result/not-regular: step_002.result.json is a symbolic link, not a regular file"),
    "step_003": (huge, "result/too-large: step_003.result.json is 5,368,709,120 bytes, over the 2,097,152-byte limit"),
    "step_004": (folder, "result/not-regular: step_004.result.json is a folder, not a regular file"),
}


def make_project(root: Path) -> Path:
    require_tool("git")
    root.mkdir()
    assert conductor("init", ".", cwd=root).returncode == 0
    (root / ".conductor" / "config.yaml").write_text(CONFIG)
    (root / ".conductor" / "policy.yaml").write_text(POLICY)
    (root / "README.md").write_text("# sample\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "s"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    return root


def claim(handoff: Path, step: str) -> tuple[dict[str, Any], Path]:
    pending = wait_for(lambda: list(handoff.glob(f"plan_*/fork_main/pending/{step}.task.json")), timeout=60)[0]
    claimed = pending.parent.parent / "in_progress" / pending.name
    os.rename(pending, claimed)
    return json.loads(claimed.read_text()), claimed


def answer(task: dict[str, Any], claimed: Path, files: dict[str, str], plan: dict[str, Any] | None = None) -> None:
    for rel, text in files.items():
        (Path(task["workspace"]) / rel).write_text(text)
    body = {"contract_version": "2.0", "task_id": task["task_id"], "nonce": task["nonce"], "status": "completed",
            "files_changed": sorted(files), "summary": "done", "executor": "test-agent"}
    if plan:
        body["plan"] = plan
    staged = claimed.with_name(f".{task['task_id']}.staged")
    staged.write_text(json.dumps(body))
    os.rename(staged, claimed.with_name(f"{task['task_id']}.result.json"))


def plan_of(steps: list[str]) -> dict[str, Any]:
    return {"goal": "files", "strategy": "default", "steps": [
        {"id": s, "title": s, "instruction": f"Write {s}.txt", "allowed_files": [f"{s}.txt"],
         "estimated_confidence": 0.95} for s in steps]}


def test_fifo_dev_zero_huge_and_folder_results_are_refused_with_a_reason_while_an_honest_step_completes(
        tmp_path: Path):
    root = make_project(tmp_path / "proj")
    handoff = root / ".conductor" / "handoff"
    engine = start("build", "Write five files", "--json", cwd=root, env=conductor_env(None, key=None))
    task, claimed = claim(handoff, "step_000")
    answer(task, claimed, {}, plan_of([*HOSTILE, "step_005"]))
    for step, (plant, _why) in HOSTILE.items():
        _task, claimed = claim(handoff, step)
        plant(claimed.with_name(f"{step}.result.json"))
    task, claimed = claim(handoff, "step_005")
    answer(task, claimed, {"step_005.txt": "honest\n"})

    _out, err = engine.communicate(timeout=120)  # never blocked: every hostile step ends at its 6 s timeout
    assert engine.returncode == 1, err
    assert "Traceback" not in err, err
    events = json.loads(conductor("events", "--json", cwd=root).stdout)
    completed = [e["data"]["step_id"] for e in events if e["type"] == "step.completed"]
    failed = {e["data"]["step_id"]: e["data"]["reason"] for e in events if e["type"] == "step.failed"}
    assert completed == ["step_005"]
    assert sorted(failed) == sorted(HOSTILE)
    for step, (_plant, why) in HOSTILE.items():
        assert failed[step].startswith("no valid result within 6s of the claim (its last result file was invalid: "
                                       f"1:1 {why}"), failed[step]
    audit = (next(handoff.glob("plan_*/fork_main")) / "audit.log").read_text().splitlines()
    refused = {r["task_id"]: r["diagnostics"][0]["code"] for r in map(json.loads, audit)
               if r["event"] == "result.invalid"}
    assert refused == {"step_001": "result/not-regular", "step_002": "result/not-regular",
                       "step_003": "result/too-large", "step_004": "result/not-regular"}
    explained = conductor("explain", "step_001", cwd=root)
    assert explained.returncode == 0 and "named pipe (FIFO)" in explained.stdout
    assert conductor("verify", cwd=root).returncode == 0


def test_a_saved_state_replaced_by_a_fifo_does_not_block_resume(tmp_path: Path):
    root = make_project(tmp_path / "proj")
    handoff = root / ".conductor" / "handoff"
    env = conductor_env(None, key=None)
    engine = start("build", "Write a file", cwd=root, env=env)
    task, claimed = claim(handoff, "step_000")
    answer(task, claimed, {}, plan_of(["step_001"]))
    wait_for(lambda: list(handoff.glob("plan_*/fork_main/pending/step_001.task.json")))
    engine.send_signal(signal.SIGINT)
    engine.communicate(timeout=60)
    (saved,) = handoff.glob("plan_*/fork_main/.state/step_001.json")
    saved.unlink()
    os.mkfifo(saved)

    agent = start("agent", "--command", f"{sys.executable} -c \"open('step_001.txt', 'w').write('x')\"",
                  "--idle-exit", "20", cwd=root, env=env)
    try:
        resumed = conductor("resume", "--json", cwd=root, env=env, timeout=120)
    finally:
        agent.kill()
        agent.communicate()
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["outcome"] == "completed"
    assert (root / "step_001.txt").read_text() == "x"
