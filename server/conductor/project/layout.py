"""Names every path inside a project's ``.conductor`` folder, so no other module spells them.

```
.conductor/policy.yaml  config.yaml  history.db  keys/  trust.json
.conductor/schemas/<kind>.schema.json  VERSION   the schemas an agent needs, offline (written by init)
.conductor/plans/<plan_id>/plan.json  journal.jsonl  checkpoint.json
.conductor/handoff/plan_<plan_id>/fork_<fork_id>/{pending,in_progress,completed,failed}/ audit.log
.conductor/handoff/metrics.json
```
Plan and fork ids are stored bare (``a1b2c3d4``, ``main``); the ``plan_``/``fork_`` prefixes
belong to folder names only, so ids never get a double prefix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CONDUCTOR_DIR = ".conductor"
TASK_STATES = ("pending", "in_progress", "completed", "failed")
KEYS_DIR = "keys"
TRUST_FILE = "trust.json"  # beside keys/: the pinned project key(s), committed and reviewed like code
SCHEMAS_DIR = "schemas"
AGENT_SCHEMAS = ("task", "result", "plan", "verdict")
"""The schemas ``conductor init`` copies into ``.conductor/schemas/``: every file an agent reads or writes."""


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest folder at or above ``start`` that holds a ``.conductor`` folder."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONDUCTOR_DIR).is_dir():
            return folder
    return None


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

    def plan_file(self, plan_id: str) -> Path:
        return self.plan_dir(plan_id) / "plan.json"

    def fork_plan_file(self, plan_id: str, fork_id: str) -> Path:
        """The plan document of one fork (``plans/<plan_id>/<fork_id>.plan.json``)."""
        return self.plan_dir(plan_id) / f"{fork_id}.plan.json"

    def journal_file(self, plan_id: str) -> Path:
        return self.plan_dir(plan_id) / "journal.jsonl"

    def checkpoint_file(self, plan_id: str) -> Path:
        return self.plan_dir(plan_id) / "checkpoint.json"

    def fork_dir(self, plan_id: str, fork_id: str) -> Path:
        return self.handoff_dir / f"plan_{plan_id}" / f"fork_{fork_id}"

    def state_dir(self, plan_id: str, fork_id: str, state: str) -> Path:
        if state not in TASK_STATES:
            raise ValueError(f"unknown task state {state!r}")
        return self.fork_dir(plan_id, fork_id) / state

    def verdicts_dir(self, plan_id: str, fork_id: str) -> Path:
        return self.fork_dir(plan_id, fork_id) / "verdicts"

    def verdict_file(self, plan_id: str, fork_id: str, task_id: str, attempt: int) -> Path:
        """Where the verdict of one attempt is written for the agent (``verdict_file`` in the task)."""
        return self.verdicts_dir(plan_id, fork_id) / f"{task_id}.{attempt}.verdict.json"

    def audit_log(self, plan_id: str, fork_id: str) -> Path:
        return self.fork_dir(plan_id, fork_id) / "audit.log"

    @property
    def attempts_dir(self) -> Path:
        return self.conductor_dir / "attempts"

    def attempt_dir(self, plan_id: str, fork_id: str, task_id: str, attempt: int) -> Path:
        """The working copy of one attempt of a step (a throwaway git repository of its own)."""
        return self.attempts_dir / plan_id / fork_id / f"{task_id}.{attempt}"

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

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the project root, with ``/`` separators."""
        return Path(path).resolve().relative_to(self.root).as_posix()
