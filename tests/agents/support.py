"""Real projects, real `conductor agent` and `conductor build` processes for the agent tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FAKE_TOOL = Path(__file__).with_name("fake_tool.py")
SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_ACCESS_KEY")

TWO_STEP_PLAN: dict[str, Any] = {
    "goal": "Create a greeting module with a test",
    "strategy": "default",
    "summary": "A greeting module, then its test.",
    "steps": [
        {"id": "step_001", "title": "Add the greeting module", "instruction": "Create hello.py with greet(name).",
         "allowed_files": ["hello.py"], "depends_on": [], "rationale": "Everything imports it.",
         "estimated_confidence": 0.9},
        {"id": "step_002", "title": "Test the greeting", "instruction": "Create test_hello.py for greet().",
         "allowed_files": ["test_hello.py"], "depends_on": ["step_001"], "rationale": "Checks it.",
         "estimated_confidence": 0.9},
    ],
}
HELLO = 'def greet(name):\n    return f"Hello, {name}!"\n'
TEST_HELLO = 'from hello import greet\n\nassert greet("Ada") == "Hello, Ada!"\nprint("ok")\n'


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any secret, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith(SECRET_SUFFIXES)
           and not k.startswith("CONDUCTOR_")}
    env.update(extra)
    return env


def conductor(*args: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conductor", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@dataclass
class Project:
    root: Path
    env: dict[str, str] = field(default_factory=clean_env)

    @classmethod
    def create(cls, root: Path, env: dict[str, str] | None = None, *, config: dict[str, Any] | None = None,
               behavior: dict[str, Any] | None = None, verification: list[dict[str, Any]] | None = None) -> Project:
        project = cls(root, env if env is not None else clean_env())
        done = conductor("init", str(root), cwd=root.parent, env=project.env)
        assert done.returncode == 0, done.stderr
        settings = {"mode": "handoff", "planner": "handoff", "forks": 1, **(config or {})}
        (root / ".conductor" / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
        policy_path = root / ".conductor" / "policy.yaml"
        policy = yaml.safe_load(policy_path.read_text())
        policy.setdefault("behavior", {}).update(behavior or {})
        if verification:
            policy["verification"] = verification
        policy_path.write_text(yaml.safe_dump(policy, sort_keys=False))
        return project

    def conductor(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return conductor(*args, cwd=self.root, env=self.env, timeout=timeout)

    def start_agent(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "conductor", "agent", *args], cwd=self.root,
                                env=env or self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)

    def build(self, goal: str, *agent_args: str, timeout: float = 600,
              agent_env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], str]:
        """``conductor build`` with ``conductor agent …`` running beside it; returns build and agent output.

        The agent runs until the build is over (a busy machine may take a while to write the first
        task), then gets Ctrl-C, as a person would stop it."""
        agent = self.start_agent(*agent_args, env=agent_env)
        try:
            built = self.conductor("build", goal, timeout=timeout)
        finally:
            if agent.poll() is None:
                agent.send_signal(signal.SIGINT)
            try:
                out, err = agent.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                agent.kill()
                out, err = agent.communicate()
        return built, out + err

    def status(self) -> dict[str, Any]:
        done = self.conductor("status", "--json")
        assert done.returncode in (0, 1), done.stderr
        return json.loads(done.stdout)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.root), *args], check=True, capture_output=True,
                              text=True).stdout

    def handoff_files(self, pattern: str) -> list[Path]:
        return sorted((self.root / ".conductor" / "handoff").rglob(pattern))

    def results(self) -> dict[str, dict[str, Any]]:
        """Every result file by step id (the last one written when a step has several)."""
        return {p.name.removesuffix(".result.json"): json.loads(p.read_text())
                for p in sorted(self.handoff_files("*.result.json"), key=lambda p: p.stat().st_mtime)}

    def steps(self) -> dict[str, dict[str, Any]]:
        (plan,) = self.status()["plans"]
        return {step["step_id"]: step for fork in plan["forks"] for step in fork["steps"]}

    def all_text(self) -> str:
        """Every file Conductor wrote under .conductor/ and every commit, as text (to look for leaks)."""
        texts = [p.read_text(errors="replace") for p in (self.root / ".conductor").rglob("*")
                 if p.is_file() and not p.is_symlink() and p.stat().st_size < 5_000_000]
        texts.append(self.git("log", "--all", "-p", "--format=%H %an %s%n%b"))
        return "\n".join(texts)
