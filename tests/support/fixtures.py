"""Pytest fixtures shared across the suite; ``tests/conftest.py`` imports them.

``openai_server`` is a started :class:`~tests.support.openai_server.ScriptedOpenAIServer`
with an empty script; add rules in the test (``openai_server.add({...})``) and point
Conductor at ``openai_server.base_url``. It is stopped after the test.

``demo_project`` and ``mixed_project`` are projects the real engine built (a real `conductor
build` with the reference agent), once per session; a test that changes one works on
``.copy(tmp_path / "proj")``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.projects import DEMO_AGENT, build_demo, build_mixed, copy_project, run_build


@pytest.fixture
def openai_server() -> Iterator[ScriptedOpenAIServer]:
    server = ScriptedOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Built:
    """A project the real engine built (see :mod:`tests.support.projects`), and its plan id."""

    root: Path
    plan_id: str
    other_plan_id: str | None = None  # a second plan of the same project (same step ids)

    def copy(self, target: Path) -> Built:
        """A copy a test may change (reading it, or writing files an agent would); the session's
        project stays as it was built. A live engine is never run on a copy: its git worktrees
        and the tasks' workspaces belong to the original."""
        return Built(copy_project(self.root, target), self.plan_id, self.other_plan_id)


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """`make demo`'s project, built once per session: two steps, verified, merged."""
    root = tmp_path_factory.mktemp("demo") / "proj"
    return Built(root, build_demo(root))


@pytest.fixture(scope="session")
def mixed_project(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A plan with a failed, a rejected, a LOW-waiting and a handed-off step (``plan_id``), and a
    second plan with the same step ids, completed by the demo agent (``other_plan_id``); built
    once per session."""
    root = tmp_path_factory.mktemp("mixed") / "proj"
    plan_id = build_mixed(root)
    return Built(root, plan_id, run_build(root, "Create a greeting module with a test", DEMO_AGENT))
