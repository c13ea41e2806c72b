"""Real projects, real `conductor build` runs and real agent processes for the security tests."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import require_tool

AGENT = Path(__file__).with_name("agent.py")
HONEST = Path(__file__).parents[1] / "handoff" / "agent_script.py"
GIT_ENV = {"GIT_AUTHOR_NAME": "user", "GIT_AUTHOR_EMAIL": "user@example.com", "GIT_COMMITTER_NAME": "user",
           "GIT_COMMITTER_EMAIL": "user@example.com"}
CONFIG = "mode: handoff\nplanner: handoff\nforks: 1\nmax_parallel_steps: {parallel}\n"


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "CONDUCTOR_", "OPENAI_", "GIT_"))}


def conductor(*args: str, cwd: Path, timeout: float = 240, extra: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conductor", *args], cwd=cwd, env={**env(), **(extra or {})},
                          capture_output=True, text=True, timeout=timeout)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={**env(), **GIT_ENV}).stdout


def make_project(root: Path, *, policy: str = "", parallel: int = 4, sandbox: str = "off") -> Path:
    """``conductor init`` + a few files + a git repository with a commit and a second branch.

    ``sandbox`` is the policy's ``behavior.sandbox``: ``off`` by default, because these agents
    attack on purpose and what is tested here is detection (as for an agent in the editor);
    tests/agents/test_sandboxed_attacks.py runs the same attacks sandboxed, where they are prevented.
    """
    require_tool("git")
    root.mkdir(parents=True)
    assert conductor("init", ".", cwd=root).returncode == 0
    (root / ".conductor" / "config.yaml").write_text(CONFIG.format(parallel=parallel))
    if policy:
        (root / ".conductor" / "policy.yaml").write_text(policy)
    policy_file = root / ".conductor" / "policy.yaml"
    text = policy_file.read_text()
    if "\nbehavior:" in "\n" + text:
        text = text.replace("behavior:\n", f"behavior:\n  sandbox: \"{sandbox}\"\n", 1)
    else:
        text += f"\nbehavior:\n  sandbox: \"{sandbox}\"\n"
    policy_file.write_text(text)
    (root / "README.md").write_text("# sample\nline two\n")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('app')\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "start")
    git(root, "branch", "other")
    (root / "NOTES.md").write_text("a second commit, so `other` is behind `main`\n")
    git(root, "add", "NOTES.md")
    git(root, "commit", "-qm", "notes")
    return root


def plan_json(steps: list[dict[str, Any]]) -> str:
    return json.dumps({"goal": "security", "strategy": "default", "summary": "s", "steps": [
        {"id": s["id"], "title": s.get("title", s["id"]), "instruction": s["instruction"],
         "allowed_files": s["allowed"], "depends_on": s.get("depends_on", []), "estimated_confidence": 0.95}
        for s in steps]})


@dataclass
class Run:
    summary: dict[str, Any]
    events: list[dict[str, Any]]
    agents_output: list[str]

    def failures(self, step_id: str) -> list[str]:
        return [e["data"]["cause"] for e in self.events
                if e["type"] == "step.failed" and e["data"]["step_id"] == step_id]

    def completed(self) -> list[str]:
        return sorted(e["data"]["step_id"] for e in self.events if e["type"] == "step.completed")


def build(root: Path, steps: list[dict[str, Any]], *, agents: int = 1, command: str | None = None,
          extra_env: dict[str, str] | None = None, timeout: float = 240) -> Run:
    """``conductor build`` in handoff mode with ``agents`` real ``conductor agent`` processes working."""
    agent_env = {**env(), "CONDUCTOR_TEST_PLAN": plan_json(steps), "CONDUCTOR_TEST_PROJECT": str(root),
                 **(extra_env or {})}
    cmd = command or f'"{sys.executable}" "{AGENT}"'
    procs = [subprocess.Popen([sys.executable, "-m", "conductor", "agent", "--root", str(root), "--command", cmd,
                               "--name", f"agent{i}"], cwd=root, env=agent_env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(agents)]
    try:
        proc = conductor("build", "security", "--json", cwd=root, timeout=timeout)
    finally:
        for p in procs:
            p.terminate()
        outputs = [p.communicate(timeout=30)[0] for p in procs]
    assert proc.returncode in (0, 1), proc.stderr
    summary = json.loads(proc.stdout)
    events = json.loads(conductor("events", "--json", "--plan", summary["plan_id"], cwd=root).stdout)
    return Run(summary, events, outputs)


def user_state(root: Path) -> dict[str, Any]:
    """What an agent must never change: hooks, config, refs other than Conductor's, HEAD, the checkout."""
    hooks = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / ".git" / "hooks").iterdir())}
    refs = {line.split()[1]: line.split()[0] for line in git(root, "for-each-ref", "--format=%(objectname) %(refname)")
            .splitlines() if not line.split()[1].startswith("refs/heads/conductor/")}
    checkout = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith((".git/", ".conductor/")) and not rel.startswith((".conductor/policy.yaml",
                                                                          ".conductor/config.yaml")):
            continue
        if path.is_file() or path.is_symlink():
            checkout[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if not path.is_symlink() else "link"
    return {"hooks": hooks, "config": (root / ".git" / "config").read_text(), "refs": refs,
            "head": (root / ".git" / "HEAD").read_text(), "checkout": checkout}


def tree(root: Path, ref: str = "HEAD") -> dict[str, str]:
    """``path -> mode`` of every file in ``ref``."""
    out = {}
    for line in git(root, "ls-tree", "-r", ref).splitlines():
        meta, path = line.split("\t", 1)
        out[path] = meta.split()[0]
    return out


def wait_for(predicate: Any, timeout: float = 60) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
