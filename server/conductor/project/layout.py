"""Names every path inside a project's ``.conductor`` folder, so no other module spells them.

```
.conductor/policy.yaml  config.yaml  history.db  keys/  trust.json
.conductor/schemas/<kind>.schema.json  VERSION   the schemas an agent needs, offline (written by init)
.conductor/plans/<plan_id>/journal.jsonl            the plan's event journal (checkpoint.json: its projection)
.conductor/plans/<plan_id>/<fork_id>.plan.json      each fork's plan document
.conductor/handoff/plan_<plan_id>/fork_<fork_id>/{pending,in_progress,completed,failed}/  audit.log  verdicts/
.conductor/attempts/<plan_id>/<fork_id>/<step>.<attempt>/   each attempt's own working copy
.conductor/handoff/metrics.json
.conductor/worktrees/<plan_id>/<fork_id>/           each fork's git worktree
```
Plan and fork ids are stored bare (``a1b2c3d4``, ``main``); the ``plan_``/``fork_`` prefixes
belong to folder names only, so ids never get a double prefix. Plan ids are minted here
(:func:`new_plan_id`), once, for every door (CLI, language server, MCP).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePath

CONDUCTOR_DIR = ".conductor"
TASK_STATES = ("pending", "in_progress", "completed", "failed")
KEYS_DIR = "keys"
TRUST_FILE = "trust.json"  # beside keys/: the pinned project key(s), committed and reviewed like code
SCHEMAS_DIR = "schemas"
AGENT_SCHEMAS = ("task", "result", "plan", "verdict")
"""The schemas ``conductor init`` copies into ``.conductor/schemas/``: every file an agent reads or writes."""
PLAN_PREFIX = "plan_"
FORK_PREFIX = "fork_"
PLAN_SUFFIX = ".plan.json"
JOURNAL_NAME = "journal.jsonl"

SKIP_DIRS = frozenset({
    ".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    ".tox", "dist", "build", "worktrees",
})
"""Folders no walk of a workspace enters (version control, virtualenvs, caches, build output,
Conductor's own fork worktrees): validation, the language server's watching and completion,
and the planner's file listing all skip the same ones."""


def new_plan_id() -> str:
    """A fresh plan id: 8 hex digits (``a1b2c3d4``)."""
    return uuid.uuid4().hex[:8]


def bare_id(value: str, prefix: str) -> str:
    """``plan_a1b2`` → ``a1b2`` for prefix ``plan_``; ids are stored without their folder prefix."""
    return value[len(prefix):] if value.startswith(prefix) and len(value) > len(prefix) else value


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest folder at or above ``start`` that holds a ``.conductor`` folder."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONDUCTOR_DIR).is_dir():
            return folder
    return None


def root_of(path: str | os.PathLike[str]) -> Path | None:
    """The project root of a path *inside* a ``.conductor`` folder (by its name alone), else ``None``."""
    parts = PurePath(path).parts
    if CONDUCTOR_DIR not in parts:
        return None
    index = len(parts) - 1 - parts[::-1].index(CONDUCTOR_DIR)
    return Path(*parts[:index]) if index else None


def in_conductor_dir(path: str | os.PathLike[str]) -> bool:
    return CONDUCTOR_DIR in PurePath(path).parts


def plan_ref(path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """``(plan_id, fork_id)`` of a plan document stored at ``.conductor/plans/<plan_id>/<fork_id>.plan.json``."""
    p = PurePath(path)
    parts = p.parts
    if (len(parts) >= 4 and parts[-3] == "plans" and parts[-4] == CONDUCTOR_DIR and p.name.endswith(PLAN_SUFFIX)
            and len(p.name) > len(PLAN_SUFFIX)):
        return parts[-2], p.name.removesuffix(PLAN_SUFFIX)
    return None


def is_journal(path: str | os.PathLike[str]) -> bool:
    p = PurePath(path)
    return p.name == JOURNAL_NAME and len(p.parts) >= 4 and p.parts[-3] == "plans" and p.parts[-4] == CONDUCTOR_DIR


def is_runtime_state(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is part of a plan's runtime state (its journal, plan documents or hand-off files)."""
    parts = PurePath(path).parts
    if CONDUCTOR_DIR not in parts:
        return False
    index = len(parts) - 1 - parts[::-1].index(CONDUCTOR_DIR)
    return len(parts) > index + 1 and parts[index + 1] in ("plans", "handoff")


@dataclass(frozen=True)
class ProjectLayout:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> ProjectLayout:
        return cls(Path(root).resolve())

    @property
    def conductor_dir(self) -> Path:
        return self.root / CONDUCTOR_DIR

    @property
    def policy_file(self) -> Path:
        return self.conductor_dir / "policy.yaml"

    @property
    def policy_display(self) -> str:
        """How the policy file is named in messages and origins (relative to the root)."""
        return f"{CONDUCTOR_DIR}/policy.yaml"

    @property
    def config_file(self) -> Path:
        return self.conductor_dir / "config.yaml"

    @property
    def history_db(self) -> Path:
        return self.conductor_dir / "history.db"

    @property
    def keys_dir(self) -> Path:
        return self.conductor_dir / KEYS_DIR

    @property
    def trust_file(self) -> Path:
        return self.conductor_dir / TRUST_FILE

    @property
    def schemas_dir(self) -> Path:
        """The agent-facing JSON Schemas, copied from the installed Conductor by ``conductor init``."""
        return self.conductor_dir / SCHEMAS_DIR

    def schema_file(self, kind: str) -> Path:
        """``.conductor/schemas/<kind>.schema.json`` (a task's ``$schema`` names the task one)."""
        return self.schemas_dir / f"{kind}.schema.json"

    @property
    def schemas_version_file(self) -> Path:
        """The Conductor version that wrote ``schemas/`` (init refreshes the folder when it differs)."""
        return self.schemas_dir / "VERSION"

    @property
    def plans_dir(self) -> Path:
        return self.conductor_dir / "plans"

    @property
    def handoff_dir(self) -> Path:
        return self.conductor_dir / "handoff"

    @property
    def metrics_file(self) -> Path:
        return self.handoff_dir / "metrics.json"

    @property
    def worktrees_dir(self) -> Path:
        return self.conductor_dir / "worktrees"

    def plan_dir(self, plan_id: str) -> Path:
        return self.plans_dir / plan_id

    def plan_file(self, plan_id: str, fork_id: str) -> Path:
        """The plan document of one fork (each fork of a plan is planned separately)."""
        return self.plan_dir(plan_id) / f"{fork_id}{PLAN_SUFFIX}"

    def plan_files(self, plan_id: str) -> dict[str, Path]:
        """Every stored fork plan of ``plan_id``: fork id → path (sorted by fork id)."""
        folder = self.plan_dir(plan_id)
        try:
            names = sorted(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return {}
        return {name.removesuffix(PLAN_SUFFIX): folder / name for name in names
                if name.endswith(PLAN_SUFFIX) and len(name) > len(PLAN_SUFFIX) and not name.startswith(".")}

    def journal_file(self, plan_id: str) -> Path:
        return self.plan_dir(plan_id) / JOURNAL_NAME

    def plan_ids(self) -> list[str]:
        """Plans that have a journal, oldest first (by the journal's modification time, then id)."""
        try:
            names = os.listdir(self.plans_dir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for name in names:
            try:
                found.append((os.stat(self.journal_file(name)).st_mtime_ns, name))
            except (FileNotFoundError, NotADirectoryError):
                continue
        return [name for _, name in sorted(found)]

    def checkpoint_file(self, plan_id: str) -> Path:
        return self.plan_dir(plan_id) / "checkpoint.json"

    def fork_dir(self, plan_id: str, fork_id: str) -> Path:
        return self.handoff_dir / f"{PLAN_PREFIX}{plan_id}" / f"{FORK_PREFIX}{fork_id}"

    def state_dir(self, plan_id: str, fork_id: str, state: str) -> Path:
        if state not in TASK_STATES:
            raise ValueError(f"unknown task state {state!r}")
        return self.fork_dir(plan_id, fork_id) / state

    def verdicts_dir(self, plan_id: str, fork_id: str) -> Path:
        return self.fork_dir(plan_id, fork_id) / "verdicts"

    def verdict_file(self, plan_id: str, fork_id: str, task_id: str, attempt: int) -> Path:
        """Where the verdict of one attempt is written for the agent (``verdict_file`` in the task)."""
        return self.verdicts_dir(plan_id, fork_id) / f"{task_id}.{attempt}.verdict.json"
    def handoff_forks(self, plan_id: str | None = None, fork_id: str | None = None) -> list[tuple[str, str]]:
        """``(plan_id, fork_id)`` of every hand-off folder, sorted; optionally only of one plan / fork."""
        out: list[tuple[str, str]] = []
        try:
            plans = sorted(os.listdir(self.handoff_dir))
        except (FileNotFoundError, NotADirectoryError):
            return out
        for plan_name in plans:
            if not plan_name.startswith(PLAN_PREFIX):
                continue
            pid = plan_name.removeprefix(PLAN_PREFIX)
            if plan_id is not None and pid != plan_id:
                continue
            try:
                forks = sorted(os.listdir(self.handoff_dir / plan_name))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for fork_name in forks:
                fid = fork_name.removeprefix(FORK_PREFIX)
                if fork_name.startswith(FORK_PREFIX) and (fork_id is None or fid == fork_id) \
                        and (self.handoff_dir / plan_name / fork_name).is_dir():
                    out.append((pid, fid))
        return out

    def step_file(self, plan_id: str, fork_id: str, state: str, step_id: str, suffix: str) -> Path:
        """``<state>/<step_id><suffix>`` of a fork (suffix ``.task.json``, ``.result.json`` …)."""
        return self.state_dir(plan_id, fork_id, state) / f"{step_id}{suffix}"

    def audit_log(self, plan_id: str, fork_id: str) -> Path:
        return self.fork_dir(plan_id, fork_id) / "audit.log"

    @property
    def attempts_dir(self) -> Path:
        return self.conductor_dir / "attempts"

    def attempt_dir(self, plan_id: str, fork_id: str, task_id: str, attempt: int) -> Path:
        """The working copy of one attempt of a step (a throwaway git repository of its own)."""
        return self.attempts_dir / plan_id / fork_id / f"{task_id}.{attempt}"

    def spare_copy_dir(self, plan_id: str, fork_id: str, name: str) -> Path:
        """A working copy Conductor made ahead of the fork's next attempt (never handed to anyone yet)."""
        return self.attempts_dir / plan_id / fork_id / ".spare" / name

    def removed_copy_dir(self, plan_id: str, fork_id: str, name: str) -> Path:
        """Where a passed attempt's working copy is moved at once, to be deleted in the background."""
        return self.attempts_dir / plan_id / fork_id / ".removed" / name

    def verify_dir(self, plan_id: str, fork_id: str, task_id: str, attempt: int) -> Path:
        """The clean checkout of an attempt's verified tree, where verification commands run."""
        return self.attempts_dir / plan_id / fork_id / f"{task_id}.{attempt}.verify"

    @property
    def quarantine_dir(self) -> Path:
        return self.conductor_dir / "quarantine"

    def quarantine_for(self, plan_id: str, fork_id: str, task_id: str, attempt: int) -> Path:
        """Where what an attempt wrote outside its working copy is moved when it is undone."""
        return self.quarantine_dir / plan_id / fork_id / f"{task_id}.{attempt}"

    def plan_lock_file(self, plan_id: str) -> Path:
        """Held (``flock``) by the one engine running the plan."""
        return self.plan_dir(plan_id) / "engine.lock"

    def runtime_paths(self) -> list[Path]:
        """Folders and files Conductor itself writes while plans run (not watched for outside writes)."""
        return [self.handoff_dir, self.plans_dir, self.attempts_dir, self.worktrees_dir, self.quarantine_dir,
                self.history_db, self.history_db.with_name("history.db-journal"),
                self.history_db.with_name("history.db-wal"), self.history_db.with_name("history.db-shm")]

    def relative_path(self, path: str | os.PathLike[str]) -> str:
        """``path`` (under the root) relative to the project root, without resolving symlinks."""
        return Path(path).relative_to(self.root).as_posix()

    @staticmethod
    def ignored_by_git() -> tuple[str, ...]:
        """What a project's ``.gitignore`` lists of Conductor's folder: keys and runtime state (not the
        policy, the config or ``trust.json``, which are reviewed and committed like code)."""
        c = CONDUCTOR_DIR
        return (f"{c}/{KEYS_DIR}/", f"{c}/history.db*", f"{c}/handoff/", f"{c}/plans/", f"{c}/worktrees/",
                f"{c}/attempts/", f"{c}/quarantine/", f"{c}/*.lock")

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the project root, with ``/`` separators."""
        return Path(path).resolve().relative_to(self.root).as_posix()
