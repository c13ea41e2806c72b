"""A coordinator that stops mid-step leaves enough behind for the next one to judge the attempt: its working
copy, its base and the snapshots of everything outside it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path

from conductor.handoff import HandoffCoordinator, TaskSpec
from conductor.handoff.claim import claim_next
from conductor.project.layout import ProjectLayout

RESULT = {"contract_version": "1.0", "task_id": "step_001", "status": "completed", "files_changed": ["x.txt"],
          "executor": "by-hand"}


async def test_reattach_judges_against_the_saved_snapshot(project: ProjectLayout) -> None:
    layout = project
    pending = layout.state_dir("r1", "main", "pending") / "step_001.task.json"
    async with HandoffCoordinator(layout) as first:
        step = asyncio.create_task(first.hand_off(TaskSpec("r1", "main", "write x.txt", ["x.txt"])))
        for _ in range(200):
            if pending.exists():
                break
            await asyncio.sleep(0.02)
        step.cancel()  # the editor closed: nobody is waiting any more
        with contextlib.suppress(asyncio.CancelledError):
            await step

    # Meanwhile an agent claims the task and works in its working copy (straying outside allowed_files), and
    # writes into the user's checkout too.
    claimed = claim_next(layout)
    assert claimed is not None
    task = json.loads(claimed.read_text())
    workspace = Path(task["workspace"])
    (workspace / "x.txt").write_text("x\n")
    (workspace / "src" / "app.py").write_text("changed in the copy\n")
    (layout.root / "src" / "app.py").write_text("changed in the user's checkout while nobody watched\n")
    result = {**RESULT, "contract_version": "2.0", "nonce": task["nonce"]}
    claimed.with_name("step_001.result.json").write_text(json.dumps(result))

    async with HandoffCoordinator(layout) as second:
        assert second.interrupted() == [("r1", "main", "step_001")]
        outcome = await second.reattach("r1", "main", "step_001")
        assert second.interrupted() == []
    codes = {v.code for v in outcome.evidence.violations}
    assert outcome.status == "failed" and outcome.reason_code == "evidence/outside-workspace"
    assert {"evidence/outside-allowed-files", "evidence/outside-workspace"} <= codes
    assert outcome.evidence.created == ["x.txt"] and outcome.evidence.modified == ["src/app.py"]
    # the user's file is back as it was (from git's objects), the agent's version kept in quarantine
    assert (layout.root / "src" / "app.py").read_text() == "print('app')\n"
    kept = layout.quarantine_for("r1", "main", "step_001", 1) / "src" / "app.py"
    assert kept.read_text() == "changed in the user's checkout while nobody watched\n"
    events = [json.loads(line)["event"] for line in layout.audit_log("r1", "main").read_text().splitlines()]
    assert events.count("task.created") == 1 and events.count("task.claimed") == 1
    verify = subprocess.run([sys.executable, "-m", "conductor", "verify", "--root", str(layout.root)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout


class Crash(Exception):
    """Stands for the coordinator's process dying at that very point."""


async def test_a_task_published_just_before_a_crash_gets_its_audit_line_on_reattach(project: ProjectLayout) -> None:
    layout = project

    async def dies_before_the_audit_line(*_args, **_kwargs) -> None:
        raise Crash("killed between publishing the task and its task.created line")

    async with HandoffCoordinator(layout) as first:
        first._audit_created = dies_before_the_audit_line  # type: ignore[method-assign]
        try:
            await first.hand_off(TaskSpec("r1", "main", "write x.txt", ["x.txt"]))
        except Crash:
            pass
        else:
            raise AssertionError("the hand-off went on past the crash")
    audit = layout.audit_log("r1", "main")
    assert not audit.exists() or "task.created" not in audit.read_text()

    claimed = claim_next(layout)  # the agent saw the published task and goes on with it
    assert claimed is not None
    task = json.loads(claimed.read_text())
    (Path(task["workspace"]) / "x.txt").write_text("x\n")
    result = {**RESULT, "contract_version": "2.0", "nonce": task["nonce"]}
    claimed.with_name("step_001.result.json").write_text(json.dumps(result))

    async with HandoffCoordinator(layout) as second:
        assert second.interrupted() == [("r1", "main", "step_001")]
        outcome = await second.reattach("r1", "main", "step_001")
    assert outcome.status == "completed", outcome.reason
    records = [json.loads(line) for line in layout.audit_log("r1", "main").read_text().splitlines()]
    created = [r for r in records if r["event"] == "task.created"]
    assert len(created) == 1 and created[0]["attempt"] == 1 and created[0]["recovered"] is True
    assert [r["event"] for r in records].index("task.created") < [r["event"] for r in records].index("step.verified")
    verify = subprocess.run([sys.executable, "-m", "conductor", "verify", "--root", str(layout.root)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout
