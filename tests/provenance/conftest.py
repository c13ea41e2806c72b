"""Shares the hand-off test fixtures, and one project built for real (`conductor build` with the
reference agent in handoff mode) that tests copy and then tamper with."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.support import conductor, conductor_env, make_project, start
from tests.handoff.conftest import agent_thread

__all__ = ["agent_thread", "built_project", "verify"]


@pytest.fixture(scope="session")
def _built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("built") / "proj", mode="handoff")
    env = conductor_env(None, key=None)
    agent = start("agent", "--command", f"{sys.executable} -m conductor.demo.agent", "--idle-exit", "30",
                  cwd=root, env=env)
    try:
        build = conductor("build", "Create a greeting module with a test", cwd=root, env=env, timeout=180)
        assert build.returncode == 0, build.stdout + build.stderr
    finally:
        agent.kill()
        agent.communicate()
    return root


@pytest.fixture
def built_project(_built_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built project (git history, journal, audit logs, provenance, keys)."""
    copy = tmp_path / "proj"
    shutil.copytree(_built_once, copy, symlinks=True)
    return copy


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    return conductor("verify", cwd=root, env=conductor_env(None, key=None))
