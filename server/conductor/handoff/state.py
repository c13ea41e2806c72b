"""What a coordinator must remember about a step in flight, so another one can pick it up.

Why a module of its own: hand-off can outlive the process that started it (the editor
closes, the machine reboots) while an agent keeps working. Before a task becomes visible,
the coordinator saves the task bytes as written, their digest, the hand-off time and the
workspace's before-snapshot (hashes and modes, no content) to
``fork_<id>/.state/step_NNN.json``; the file is removed once the step has its verdict.
``HandoffCoordinator.reattach`` loads it and carries on waiting and judging as if nothing
had happened. Limits after a restart: the diff size of a modified file whose old content
is not in git counts its current lines, and rollback can restore only git-tracked files.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from pathlib import Path

from conductor.contract.task import Task
from conductor.handoff.snapshot import Snapshot
from conductor.handoff.tasks import WrittenTask
from conductor.project.layout import ProjectLayout
from conductor.storage.atomic import atomic_write_json

STATE_DIR = ".state"


def state_file(layout: ProjectLayout, plan_id: str, fork_id: str, task_id: str) -> Path:
    return layout.fork_dir(plan_id, fork_id) / STATE_DIR / f"{task_id}.json"


def save_state(layout: ProjectLayout, written: WrittenTask, before: Snapshot) -> None:
    task = written.task
    atomic_write_json(state_file(layout, task.plan_id, task.fork_id, task.task_id), {
        "task_bytes": base64.b64encode(written.data).decode("ascii"),
        "task_digest": written.digest,
        "written_at": written.written_at,
        "snapshot": before.to_json(),
    }, mode=0o600)


def load_state(layout: ProjectLayout, plan_id: str, fork_id: str, task_id: str) -> tuple[WrittenTask, Snapshot] | None:
    path = state_file(layout, plan_id, fork_id, task_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw = base64.b64decode(data["task_bytes"])
    except (FileNotFoundError, ValueError, KeyError):
        return None
    if hashlib.sha256(raw).hexdigest() != data.get("task_digest"):
        return None
    task = Task.model_validate_json(raw)
    pending = layout.state_dir(plan_id, fork_id, "pending") / f"{task_id}.task.json"
    written = WrittenTask(task, pending, raw, str(data["task_digest"]), str(data["written_at"]))
    return written, Snapshot.from_json(data["snapshot"])


def clear_state(layout: ProjectLayout, plan_id: str, fork_id: str, task_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_file(layout, plan_id, fork_id, task_id).unlink()


def interrupted_steps(layout: ProjectLayout) -> list[tuple[str, str, str]]:
    """``(plan_id, fork_id, task_id)`` of steps handed off by a coordinator that stopped before a verdict."""
    out: list[tuple[str, str, str]] = []
    if not layout.handoff_dir.is_dir():
        return out
    for path in sorted(layout.handoff_dir.glob(f"plan_*/fork_*/{STATE_DIR}/step_*.json")):
        fork_dir = path.parent.parent
        plan_id = fork_dir.parent.name.removeprefix("plan_")
        fork_id = fork_dir.name.removeprefix("fork_")
        task_id = path.name.removesuffix(".json")
        if any((fork_dir / state / f"{task_id}.provenance.json").exists() for state in ("completed", "failed")):
            clear_state(layout, plan_id, fork_id, task_id)  # judged; only the clean-up was missed
            continue
        out.append((plan_id, fork_id, task_id))
    return out
