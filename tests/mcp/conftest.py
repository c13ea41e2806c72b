"""A real `conductor mcp` subprocess driven by the official SDK's client session over stdio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from conductor.contract.policy import Policy
from conductor.handoff.tasks import TaskSpec, WrittenTask, write_task
from conductor.policy import load_project_policy, merge
from conductor.policy.levels import PolicyLevel, load_policy_file
from conductor.policy.merge import EffectivePolicy
from conductor.project.init import init_project
from conductor.project.layout import ProjectLayout

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}


def conductor(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conductor", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **GIT_ENV})


@pytest.fixture
def project(tmp_path: Path) -> ProjectLayout:
    """A fresh project made by `conductor init`'s code (in-process), in a git repository with one commit."""
    root = tmp_path / "proj"
    init_project(root)
    (root / "poetry.lock").write_text("locked\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "start"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    return ProjectLayout.at(root)


@dataclass
class Answer:
    is_error: bool
    text: str
    data: dict[str, Any]


class Client:
    """Calls tools and returns (is_error, text, structured data)."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> Answer:
        result = await self.session.call_tool(name, arguments or {}, read_timeout_seconds=120)
        text = "\n".join(getattr(c, "text", "") for c in result.content)
        data = result.structured_content if isinstance(result.structured_content, dict) else {}
        return Answer(bool(result.is_error), text, data)


@asynccontextmanager
async def mcp_client(root: Path, *args: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "conductor", "mcp", *args], cwd=str(root),
                                   env={k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "CI")})
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield Client(session)


def step_policy(layout: ProjectLayout, **behavior: int) -> EffectivePolicy:
    """The project policy with a step level setting ``behavior`` (e.g. a short timeout)."""
    project = load_policy_file(layout.policy_file)
    assert project is not None
    return merge([project, PolicyLevel("step", Policy.model_validate({"behavior": behavior}))])


def write_pending(layout: ProjectLayout, instruction: str, allowed: list[str], *, plan: str = "p1", fork: str = "main",
                  kind: str = "step", timeout_seconds: int | None = None) -> WrittenTask:
    """A task in pending/ exactly as the coordinator writes it (no coordinator needed)."""
    policy = load_project_policy(layout.root) if timeout_seconds is None else \
        step_policy(layout, timeout_seconds=timeout_seconds)
    spec = TaskSpec(plan, fork, instruction, allowed, kind=kind)  # type: ignore[arg-type]
    return write_task(layout, spec, policy, ".")


def tree(layout: ProjectLayout) -> dict[str, bytes]:
    """Every file of the project (handoff state and workspace) but the metrics cache."""
    out = {}
    for path in sorted(layout.root.rglob("*")):
        if path.is_file() and path.name != "metrics.json" and ".git" not in path.parts:
            out[path.relative_to(layout.root).as_posix()] = path.read_bytes()
    return out


def claim_record(layout: ProjectLayout, plan: str, fork: str, task_id: str) -> dict[str, Any]:
    return json.loads((layout.state_dir(plan, fork, "in_progress") / f"{task_id}.claim.json").read_text())
