"""What a coordinator must remember about an attempt in flight, so another one can pick it up.

Why a module of its own: hand-off can outlive the process that started it (the editor closes,
the machine reboots) while an agent keeps working. Before a task becomes visible, the
coordinator saves the task bytes as written, their digest and time, the base commit and the
attempt's working copy, the fork branch it will be integrated into, and the snapshots taken
around it (the project's checkout and the shared git state) to
``fork_<id>/.state/step_NNN.json``; the file is removed once the step has its verdict.
``HandoffCoordinator.reattach`` loads it and carries on waiting and judging as if nothing had
happened (the base tree comes back from git; only the user's index is compared by ``lstat``
alone after a restart, its bytes are not kept on disk).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor.contract.task import Task
from conductor.git.shared import SharedState
from conductor.handoff.outside import Checkout
from conductor.handoff.tasks import WrittenTask
from conductor.project.layout import ProjectLayout
from conductor.storage.atomic import atomic_write_json
from conductor.storage.regular import read_regular

log = logging.getLogger("conductor.handoff")
STATE_DIR = ".state"
STATE_LIMIT = 32 << 20


@dataclass
class SavedAttempt:
    written: WrittenTask
    base: str
    workspace: Path
    integrate_into: str | None
    checkout: Checkout | None
    shared: SharedState | None


def state_file(layout: ProjectLayout, plan_id: str, fork_id: str, task_id: str) -> Path:
    return layout.fork_dir(plan_id, fork_id) / STATE_DIR / f"{task_id}.json"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def save_state(layout: ProjectLayout, saved: SavedAttempt) -> None:
    task = saved.written.task
    body: dict[str, Any] = {
        "task_bytes": _b64(saved.written.data),
        "task_digest": saved.written.digest,
        "written_at": saved.written.written_at,
        "base": saved.base,
        "workspace": str(saved.workspace),
        "integrate_into": saved.integrate_into,
    }
    if saved.checkout is not None:
        body["checkout"] = {"stats": {k: list(v) for k, v in saved.checkout.stats.items()},
                            "blobs": saved.checkout.blobs,
                            "kept": {k: _b64(v) for k, v in saved.checkout.kept.items()}}
    if saved.shared is not None:
        body["shared"] = {"files": {k: _b64(v) for k, v in saved.shared.files.items()}, "refs": saved.shared.refs,
                          "index": list(saved.shared.index) if saved.shared.index else None}
    atomic_write_json(state_file(layout, task.plan_id, task.fork_id, task.task_id), body, mode=0o600)


def load_state(layout: ProjectLayout, plan_id: str, fork_id: str, task_id: str) -> SavedAttempt | None:
    """The saved attempt, or ``None`` when there is none or it is damaged (never a half-trusted one)."""
    path = state_file(layout, plan_id, fork_id, task_id)
    try:
        data = json.loads(read_regular(path, STATE_LIMIT))  # a FIFO, a symlink, a huge file: Unreadable
        raw = _unb64(data["task_bytes"])
        if hashlib.sha256(raw).hexdigest() != data.get("task_digest"):
            return None
        task = Task.model_validate_json(raw)
        checkout = shared = None
        if data.get("checkout"):
            c = data["checkout"]
            checkout = Checkout(stats={k: tuple(v) for k, v in c["stats"].items()}, blobs=dict(c["blobs"]),
                                kept={k: _unb64(v) for k, v in c["kept"].items()})
        if data.get("shared"):
            s = data["shared"]
            shared = SharedState(files={k: _unb64(v) for k, v in s["files"].items()}, refs=dict(s["refs"]),
                                 index=tuple(s["index"]) if s.get("index") else None)
        pending = layout.state_dir(plan_id, fork_id, "pending") / f"{task_id}.task.json"
        written = WrittenTask(task, pending, raw, str(data["task_digest"]), str(data["written_at"]))
        return SavedAttempt(written, str(data["base"]), Path(data["workspace"]), data.get("integrate_into"),
                            checkout, shared)
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
        live = any((fork_dir / state / f"{task_id}.task.json").exists() for state in ("pending", "in_progress"))
        if not live and any((fork_dir / state / f"{task_id}.provenance.json").exists()
                            for state in ("completed", "failed")):
            clear_state(layout, plan_id, fork_id, task_id)  # judged and moved; only the clean-up was missed
            continue
        if load_state(layout, plan_id, fork_id, task_id) is None:
            # damaged, or not a regular file any more: it cannot be trusted to judge the attempt by, so the
            # attempt is issued again instead of reattached
            log.warning("%s: the saved hand-off state is unusable; the attempt will be issued again", path)
            clear_state(layout, plan_id, fork_id, task_id)
            continue
        out.append((plan_id, fork_id, task_id))
    return out
