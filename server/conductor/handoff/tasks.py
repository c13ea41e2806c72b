"""Writing ``pending/step_NNN.task.json``: the task an agent picks up.

Why a module of its own: the task file is the contract's first half. It must be valid
against the task schema (it is built from the ``contract.Task`` model), carry the merged
constraints and limits of the effective policy, the workspace the agent works in, and the
checksum over its canonical content; and it must appear atomically (temp + fsync + rename)
so an agent never claims half a task.

Ids: plan and fork ids are stored bare (``a1b2``); the folder adds the prefix
(``plan_a1b2``). An id passed with the prefix (``plan_a1b2``) is stripped once, so folders
never read ``plan_plan_…``. Writing a ``task_id`` again while it is pending or in progress is
refused (``TaskExists``). Issuing it again after a verdict (a retry, or a re-run after the
engine lost the verdict in a crash) first moves the earlier attempt's files to
``failed/attempts/<n>/`` or ``completed/attempts/<n>/``, so nothing is overwritten and every
signed record stays in the fork's provenance chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from conductor.contract.checksum import task_checksum
from conductor.contract.task import CONTRACT_VERSION, Confidence, Task
from conductor.handoff.audit import utc_now
from conductor.policy.merge import EffectivePolicy
from conductor.project.layout import TASK_STATES, ProjectLayout, bare_id
from conductor.storage.atomic import atomic_write_bytes

TASK_ID_RE = re.compile(r"^step_[0-9]{3,}$")
STEP_FILES = (".task.json", ".result.json", ".explanation.md", ".provenance.json")


class TaskExists(Exception):
    """The task id is already pending, in progress or completed in this fork."""


def step_id(number: int) -> str:
    return f"step_{number:03d}"


@dataclass
class TaskSpec:
    """What the engine wants handed off; the policy supplies constraints and limits."""

    plan_id: str
    fork_id: str
    instruction: str
    allowed_files: list[str]
    task_id: str | None = None  # next free step_NNN of the fork when None
    title: str = ""
    constraints: list[str] = field(default_factory=list)  # the step's own, after the policy's
    depends_on: list[str] = field(default_factory=list)
    kind: Literal["step", "plan"] = "step"
    confidence: Confidence | None = None  # score 1.0 ("not scored") when None
    policy: EffectivePolicy | None = None  # the step's effective policy; the coordinator's default when None
    base_commit: str | None = None  # the commit the attempt's working copy starts from
    attempt: int | None = None  # the attempt number the engine wants (default: one more than before)


@dataclass(frozen=True)
class WrittenTask:
    task: Task
    path: Path  # pending/step_NNN.task.json
    data: bytes  # the bytes written
    digest: str  # hex SHA-256 of ``data``
    written_at: str


def fork_paths(layout: ProjectLayout, plan_id: str, fork_id: str) -> dict[str, Path]:
    return {state: layout.state_dir(plan_id, fork_id, state) for state in TASK_STATES}


def ensure_fork_dirs(layout: ProjectLayout, plan_id: str, fork_id: str) -> None:
    for path in fork_paths(layout, plan_id, fork_id).values():
        path.mkdir(parents=True, exist_ok=True)


def next_task_id(layout: ProjectLayout, plan_id: str, fork_id: str) -> str:
    """The next ``step_NNN`` not used anywhere in the fork."""
    highest = 0
    for folder in fork_paths(layout, plan_id, fork_id).values():
        if folder.is_dir():
            for name in os.listdir(folder):
                m = re.match(r"^step_([0-9]{3,})\.", name)
                if m:
                    highest = max(highest, int(m.group(1)))
    return step_id(highest + 1)


def new_nonce() -> str:
    return secrets.token_hex(16)


def build_task(spec: TaskSpec, policy: EffectivePolicy, workspace: str, task_id: str, created_at: str, *,
               attempt: int, nonce: str, verdict_file: str, schema_uri: str | None = None) -> Task:
    """The contract-2.0 task for ``spec``: every enforced limit in it, checksummed by RFC 8785.

    ``schema_uri``: the project's offline copy of the task schema (``$schema``), when it has one.
    """
    constraints = list(policy.constraints)
    constraints.extend(c for c in spec.constraints if c not in constraints)
    confidence = spec.confidence or Confidence(score=1.0, level=policy.confidence_level(1.0))
    body: dict[str, object] = {"$schema": schema_uri} if schema_uri else {}
    body |= {
        "contract_version": CONTRACT_VERSION,
        "task_id": task_id,
        "plan_id": spec.plan_id,
        "fork_id": spec.fork_id,
        "title": spec.title,
        "attempt": attempt,
        "nonce": nonce,
        "workspace": workspace,
        "instruction": spec.instruction,
        "allowed_files": list(spec.allowed_files),
        "constraints": constraints,
        "protected_patterns": list(policy.protected),
        "max_diff_lines": int(policy.limit("max_diff_lines")),
        "max_files_changed": int(policy.limit("max_files_changed")),
        "timeout_seconds": int(policy.limit("timeout_seconds")),
        "verification": [c.model_dump(mode="json") for c in policy.commands],
        "verdict_file": verdict_file,
        "confidence": confidence.model_dump(mode="json"),
        "depends_on": list(spec.depends_on),
        "kind": spec.kind,
        "created_at": created_at,
    }
    if spec.base_commit:
        body["base_commit"] = spec.base_commit
    limits = policy.limits
    if "sandbox" in limits and "network" in limits:
        body["sandbox"] = {"mode": limits["sandbox"].value, "network": limits["network"].value}
    body["checksum"] = task_checksum(body)
    return Task.model_validate(body)


def task_bytes(task: Task) -> bytes:
    """The bytes of a task file as Conductor writes it."""
    return (json.dumps(task.body(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _archive(layout: ProjectLayout, plan_id: str, fork_id: str, task_id: str, state: str) -> None:
    """Move an earlier attempt's files from ``<state>/`` to ``<state>/attempts/<n>/`` (n = 1, 2, …)."""
    folder = layout.state_dir(plan_id, fork_id, state)
    present = [folder / f"{task_id}{suffix}" for suffix in STEP_FILES if (folder / f"{task_id}{suffix}").exists()]
    if not present:
        return
    n = 1
    while (folder / "attempts" / str(n) / f"{task_id}.task.json").exists() or \
            (folder / "attempts" / str(n) / f"{task_id}.provenance.json").exists():
        n += 1
    target = folder / "attempts" / str(n)
    target.mkdir(parents=True, exist_ok=True)
    for path in present:
        os.rename(path, target / path.name)


def write_task(layout: ProjectLayout, spec: TaskSpec, policy: EffectivePolicy, workspace: str,
               attempt: int = 1) -> WrittenTask:
    """Build the task for ``spec`` under ``policy`` and write it atomically into ``pending/``."""
    prepared = prepare_task(layout, spec, policy, workspace, attempt)
    publish_task(prepared)
    return prepared


def publish_task(prepared: WrittenTask) -> None:
    """Make a prepared task visible to agents (atomic write into ``pending/``)."""
    atomic_write_bytes(prepared.path, prepared.data)


def prepare_task(layout: ProjectLayout, spec: TaskSpec, policy: EffectivePolicy, workspace: str,
                 attempt: int = 1) -> WrittenTask:
    """Everything :func:`write_task` does except writing the file (id, checks, archiving, bytes)."""
    spec.plan_id = bare_id(spec.plan_id, "plan_")
    spec.fork_id = bare_id(spec.fork_id, "fork_")
    ensure_fork_dirs(layout, spec.plan_id, spec.fork_id)
    task_id = spec.task_id or next_task_id(layout, spec.plan_id, spec.fork_id)
    if not TASK_ID_RE.match(task_id):
        raise ValueError(f"task id {task_id!r} is not step_NNN")
    for state in ("pending", "in_progress"):
        if (layout.state_dir(spec.plan_id, spec.fork_id, state) / f"{task_id}.task.json").exists():
            raise TaskExists(f"{task_id} is already {state.replace('_', ' ')} in plan {spec.plan_id} "
                             f"fork {spec.fork_id}")
    for state in ("failed", "completed"):
        _archive(layout, spec.plan_id, spec.fork_id, task_id, state)
    created_at = utc_now()
    verdict_file = layout.verdict_file(spec.plan_id, spec.fork_id, task_id, attempt)
    schema = layout.schema_file("task")
    task = build_task(spec, policy, workspace, task_id, created_at, attempt=attempt, nonce=new_nonce(),
                      verdict_file=str(verdict_file), schema_uri=schema.as_uri() if schema.is_file() else None)
    data = task_bytes(task)
    path = layout.state_dir(spec.plan_id, spec.fork_id, "pending") / f"{task_id}.task.json"
    return WrittenTask(task, path, data, hashlib.sha256(data).hexdigest(), created_at)
