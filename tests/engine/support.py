"""Helpers for engine tests: a real project in a real git repository, and the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import require_tool

TEST_KEY = "sk-test-DO-NOT-LEAK-7f3a9c"


def conductor_env(base_url: str | None = None, key: str | None = TEST_KEY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "CONDUCTOR_", "OPENAI_"))}
    if base_url:
        env["CONDUCTOR_LLM_BASE_URL"] = base_url
        env["CONDUCTOR_LLM_MODEL"] = "scripted-model"
    if key:
        env["GEMINI_API_KEY"] = key
    return env


def conductor(*args: str, cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conductor", *args], cwd=cwd, env=env or conductor_env(),
                          capture_output=True, text=True, timeout=timeout)


def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "conductor", *args], cwd=cwd, env=env or conductor_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def make_project(root: Path, policy: str = "", mode: str = "llm") -> Path:
    """``conductor init`` + a policy + a git repository with one commit."""
    require_tool("git")
    root.mkdir(parents=True, exist_ok=True)
    assert conductor("init", ".", cwd=root).returncode == 0
    (root / ".conductor" / "config.yaml").write_text(
        f"mode: {mode}\nforks: 3\nplanner: auto\nllm:\n  base_url: http://127.0.0.1:9/v1\n  model: scripted-model\n"
        "  max_retries: 1\n  timeout_seconds: 20\n"
    )
    if policy:
        (root / ".conductor" / "policy.yaml").write_text(policy)
    (root / "README.md").write_text("# sample project\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start"], cwd=root,
                   check=True)
    return root


def status(root: Path) -> dict[str, Any]:
    proc = conductor("status", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_for(predicate: Any, timeout: float = 60, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def files_containing(root: Path, needle: str) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            try:
                if needle.encode() in path.read_bytes():
                    hits.append(str(path.relative_to(root)))
            except OSError:
                pass
    return hits
