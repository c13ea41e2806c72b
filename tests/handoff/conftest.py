"""Real projects (optionally real git) and real agent processes for the hand-off tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.handoff.agent import Agent, AgentOptions
from conductor.project.layout import ProjectLayout

AGENT_SCRIPT = Path(__file__).with_name("agent_script.py")
SCRIPT_COMMAND = f'"{sys.executable}" "{AGENT_SCRIPT}"'

POLICY = """\
global_constraints:
  - Keep changes small
file_rules:
  protected_patterns:
    - "*.lock"
behavior:
  max_diff_lines: 50
  timeout_seconds: 30
  sandbox: "off"   # these agents misbehave on purpose: what is tested here is detection, not prevention
verification:
  - name: readme present
    run: test -f README.md
    timeout_seconds: 20
"""


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, env=env).stdout


def make_project(root: Path, *, use_git: bool = True, policy: str = POLICY) -> ProjectLayout:
    (root / ".conductor").mkdir(parents=True)
    (root / ".conductor" / "policy.yaml").write_text(policy)
    (root / "README.md").write_text("# demo\n")
    (root / "poetry.lock").write_text("locked\n")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('app')\n")
    if use_git:
        (root / ".gitignore").write_text(".conductor/\n")
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "init")
    return ProjectLayout.at(root)


@pytest.fixture
def project(tmp_path: Path) -> ProjectLayout:
    return make_project(tmp_path / "proj")


def agent_process(layout: ProjectLayout, *args: str, command: str = SCRIPT_COMMAND) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "conductor", "agent", "--root", str(layout.root),
                             "--command", command, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def agent_thread() -> Iterator[object]:
    """Start an in-process reference agent (a thread) with ``start(layout)``; stopped after the test."""
    running: list[tuple[Agent, threading.Thread]] = []

    def start(layout: ProjectLayout, idle_exit: float | None = None, command: str = SCRIPT_COMMAND) -> list[str]:
        lines: list[str] = []
        agent = Agent(AgentOptions(root=layout.root, command=command, idle_exit=idle_exit, poll_interval=0.1),
                      out=lines.append)
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        running.append((agent, thread))
        return lines

    yield start
    for agent, thread in running:
        agent.stopped.set()
        thread.join(timeout=30)
