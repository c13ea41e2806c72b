"""Claiming a task: the atomic rename ``pending/step_NNN.task.json`` → ``in_progress/``.

Why a module of its own: the rename *is* the lock. ``os.rename`` within one file system
is atomic, so of N agents racing for the same task exactly one succeeds; the others get
``FileNotFoundError`` and move on to the next task. No lock files, no leases. Conductor
uses the same operation to withdraw a task nobody claimed in time (``pending/`` →
``failed/``), so a late claim and a withdrawal can never both succeed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conductor.project.layout import ProjectLayout


@dataclass(frozen=True)
class PendingTask:
    plan_id: str
    fork_id: str
    task_id: str
    path: Path

    @property
    def fork_dir(self) -> Path:
        return self.path.parent.parent


def iter_pending(layout: ProjectLayout, plan_id: str | None = None,
                 fork_id: str | None = None) -> Iterator[PendingTask]:
    """Pending tasks, oldest step first within each fork, optionally filtered by plan and fork."""
    base = layout.handoff_dir
    if not base.is_dir():
        return
    plans = [f"plan_{plan_id}"] if plan_id else sorted(os.listdir(base))
    for plan_dir_name in plans:
        if not plan_dir_name.startswith("plan_"):
            continue
        plan_dir = base / plan_dir_name
        try:
            forks = [f"fork_{fork_id}"] if fork_id else sorted(os.listdir(plan_dir))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for fork_dir_name in forks:
            if not fork_dir_name.startswith("fork_"):
                continue
            pending = plan_dir / fork_dir_name / "pending"
            try:
                names = sorted(n for n in os.listdir(pending) if n.endswith(".task.json") and not n.startswith("."))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for name in names:
                yield PendingTask(plan_dir_name.removeprefix("plan_"), fork_dir_name.removeprefix("fork_"),
                                  name.removesuffix(".task.json"), pending / name)


def claim(task: PendingTask) -> Path | None:
    """Rename the task into ``in_progress/``; its new path, or ``None`` if another agent won."""
    target = task.fork_dir / "in_progress" / task.path.name
    try:
        os.rename(task.path, target)
    except FileNotFoundError:
        return None
    return target


def claim_next(layout: ProjectLayout, plan_id: str | None = None, fork_id: str | None = None) -> Path | None:
    """Claim the first pending task that nobody else takes first; ``None`` when none is left."""
    for task in iter_pending(layout, plan_id, fork_id):
        claimed = claim(task)
        if claimed is not None:
            return claimed
    return None


def withdraw(pending_path: Path, failed_dir: Path) -> Path | None:
    """Move an unclaimed task to ``failed/``; ``None`` if an agent claimed it first."""
    failed_dir.mkdir(parents=True, exist_ok=True)
    target = failed_dir / pending_path.name
    try:
        os.rename(pending_path, target)
    except FileNotFoundError:
        return None
    return target
