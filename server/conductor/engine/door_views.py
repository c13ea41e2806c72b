"""The engine API's own result views (pydantic): loaded with the rest of the engine, on first use.

They live apart from ``conductor.engine.api`` so that importing the API, as every door does, builds
no pydantic model; ``api`` re-exports each of them (``api.Verdict`` …).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict

from conductor.contract.plan import Plan
from conductor.engine.views import View


class Readiness(View):
    """What a project needs before a build, as the editor shows it: its mode and whether the model's
    key is present (never the key itself)."""

    root: str
    mode: str
    api_key_env: str
    api_key_set: bool


class PlanDocument(View):
    """A fork's stored plan document."""

    plan_id: str
    fork_id: str
    path: Path
    plan: Plan


class Explanation(View):
    plan_id: str
    step_id: str
    fork_id: str
    markdown: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {**self.data, "plan_id": self.plan_id, "markdown": self.markdown}


class Approval(View):
    plan_id: str
    step_id: str
    forks: list[str]
    decision: Literal["approve", "reject"]
    by: str


class ReplayView(View):
    plan_id: str
    to_seq: int
    journal_ok: bool
    journal_break: str | None
    state: dict[str, Any]
    replanned: list[dict[str, Any]] | None = None


class ClaimedTask(View):
    """A task an agent claimed: everything it needs to do it, and its deadline."""

    model_config = ConfigDict(extra="allow")

    task_id: str
    plan_id: str
    fork_id: str
    kind: str
    title: str
    instruction: str
    allowed_files: list[str]
    constraints: list[str]
    protected_patterns: list[str]
    verification: list[dict[str, Any]]
    timeout_seconds: int
    deadline: str
    workspace: str
    task_file: str
    executor: str


class Verdict(View):
    """Conductor's verdict on a submitted result, with its evidence."""

    model_config = ConfigDict(extra="allow")

    task_id: str
    plan_id: str
    fork_id: str
    verdict: str | None
    state: str
    reason: str | None
    reason_code: str | None
    violations: list[dict[str, Any]]
    verification: list[dict[str, Any]]
    provenance: str
