"""Projects the real engine built: `conductor init`, a git repository, `conductor build` with the
reference agent (`conductor agent --command …`) doing the work. No file under `.conductor/` is
written by a test; the journals, plan documents, task files and provenance are the engine's.

* :func:`build_demo` — what `make demo` does: a two-step plan, completed, verified and merged.
* :func:`build_mixed` — a plan whose four steps show every state a person meets: ``step_001``
  failed (its agent exited 1), ``step_002`` rejected at LOW confidence, ``step_003`` waiting at
  LOW confidence for approval, ``step_004`` handed off and waiting for an agent. The plan has a
  plan-level and a step-level verification command. The build is halted with Ctrl-C (SIGINT)
  once all four hold, so the state stays still for the tests that read it.

Both take a few seconds; the session fixtures in :mod:`tests.support.fixtures` build each
once, and tests that change a project work on a copy.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

AGENT = Path(__file__).with_name("plan_agent.py")
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
SECRETS = ("GEMINI_", "CONDUCTOR_", "OPENAI_")

MIXED_PLAN: dict[str, Any] = {
    "summary": "Four independent steps",
    "policy": {"verification": [{"name": "plan check", "run": "python -c \"print('plan check')\""}]},
    "steps": [
        {"id": "step_001", "title": "A step whose agent fails", "instruction": "exit 1",
         "allowed_files": ["one.txt"], "estimated_confidence": 0.95},
        {"id": "step_002", "title": "A risky step a person rejects", "instruction": "write two.txt: 2",
         "allowed_files": ["two.txt"], "estimated_confidence": 0.02},
        {"id": "step_003", "title": "A risky step waiting for approval", "instruction": "write three.txt: 3",
         "allowed_files": ["three.txt"], "estimated_confidence": 0.02},
        {"id": "step_004", "title": "A step nobody has taken yet", "instruction": "write four.txt: 4",
         "allowed_files": ["four.txt"], "estimated_confidence": 0.95,
         "policy": {"verification": [{"name": "step check", "run": "python -c \"print('step check')\""}]}},
    ],
}
MIXED_POLICY = """
verification:
  - name: project check
    run: python -c "print('project check')"
"""


def env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith(SECRETS)}, **GIT_ENV}


def conductor(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conductor", *args], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "conductor", *args], cwd=cwd, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition",
             proc: subprocess.Popen[str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"{what}: the process ended first (exit {proc.returncode}):\n{output}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def init(root: Path, policy_extra: str = "", config: str | None = None,
         replace: dict[str, str] | None = None) -> Path:
    """A project as a user starts one: `conductor init`, then its policy edited (``replace``: old → new
    text, then ``policy_extra`` appended) and the config written."""
    from tests.conftest import require_tool  # here: tests.conftest imports this module's fixtures

    require_tool("git")
    root.mkdir(parents=True, exist_ok=True)
    made = conductor("init", ".", cwd=root)
    assert made.returncode == 0, made.stderr
    policy = root / ".conductor" / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    policy.write_text(text + policy_extra, encoding="utf-8")
    if config is not None:
        (root / ".conductor" / "config.yaml").write_text(config, encoding="utf-8")
    return root


def journal_types(root: Path, plan_id: str) -> list[tuple[str, dict[str, Any]]]:
    path = root / ".conductor" / "plans" / plan_id / "journal.jsonl"
    if not path.exists():
        return []
    return [(r["type"], r["data"]) for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())]


def only_plan(root: Path) -> str | None:
    plans = root / ".conductor" / "plans"
    found = [p.name for p in plans.iterdir() if (p / "journal.jsonl").exists()] if plans.is_dir() else []
    return found[0] if len(found) == 1 else None


def pending(root: Path, plan_id: str, step_id: str) -> bool:
    return (root / ".conductor" / "handoff" / f"plan_{plan_id}" / "fork_main" / "pending"
            / f"{step_id}.task.json").exists()


DEMO_AGENT = f"{sys.executable} -m conductor.demo.agent"


def plan_ids(root: Path) -> set[str]:
    plans = root / ".conductor" / "plans"
    return {p.name for p in plans.iterdir() if (p / "journal.jsonl").exists()} if plans.is_dir() else set()


def run_build(root: Path, goal: str, agent_command: str) -> str:
    """`conductor build GOAL` with a reference agent (`conductor agent --command …`) taking only this
    plan's tasks; returns the new plan's id once the build has finished."""
    before = plan_ids(root)
    build = start("build", goal, "--json", cwd=root)
    agent: subprocess.Popen[str] | None = None
    try:
        (plan_id,) = wait_for(lambda: plan_ids(root) - before, what="the new plan's journal", proc=build)
        agent = start("agent", "--command", agent_command, "--plan", plan_id, "--idle-exit", "30", "--name",
                      "test-agent", cwd=root)
        out, _ = build.communicate(timeout=180)
        assert build.returncode == 0, out
        assert json.loads(out)["plan_id"] == plan_id
        return str(plan_id)
    finally:
        for proc in (build, agent):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def build_demo(root: Path) -> str:
    """`make demo`'s project: the demo agent plans and does a two-step plan; returns the plan id."""
    init(root, "\nverification:\n  - name: greeting test\n"
               f"    run: {sys.executable} tests/test_hello.py || {sys.executable} hello.py\n    timeout_seconds: 60\n")
    return run_build(root, "Create a greeting module with a test", DEMO_AGENT)


def build_mixed(root: Path, on_started: Callable[[Path], None] | None = None,
                keep_running: list[subprocess.Popen[str]] | None = None) -> str:
    """The four-state plan (see the module docstring); returns its plan id.

    ``on_started`` runs once the project exists and before the build starts (a test starts its
    language server there, to see the steps move). The build is then stopped with SIGINT (a
    clean halt: `conductor resume` would go on), unless ``keep_running`` is given: the running
    build is appended to it and the caller stops it.
    """
    halt = keep_running is None
    init(root, MIXED_POLICY, "mode: handoff\nforks: 1\nplanner: handoff\nmax_parallel_steps: 4\n",
         replace={"max_repairs: 2 ": "max_repairs: 0 ", "approval_below: 0.5 ": "approval_below: 0.75"})
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(AGENT))} {shlex.quote(json.dumps(MIXED_PLAN))}"
    if on_started is not None:
        on_started(root)
    build = start("build", "Show every state", "--quiet", cwd=root)
    try:
        plan_id = wait_for(lambda: only_plan(root), what="the plan's journal", proc=build)
        wait_for(lambda: (root / ".conductor" / "handoff" / f"plan_{plan_id}" / "fork_main" / "pending"
                          / "step_000.task.json").exists(), what="the planning task", proc=build)
        planned = conductor("agent", "--command", command, "--once", "--name", "planner", cwd=root)
        assert planned.returncode == 0, planned.stdout + planned.stderr
        wait_for(lambda: pending(root, plan_id, "step_001") and pending(root, plan_id, "step_004"),
                 what="step_001 and step_004 handed off", proc=build)
        failed = conductor("agent", "--command", command, "--once", "--name", "failing-agent", cwd=root)
        assert failed.returncode == 0, failed.stdout + failed.stderr
        wait_for(lambda: ("step.failed", "step_001") in [(t, d.get("step_id"))
                                                         for t, d in journal_types(root, plan_id)],
                 what="step_001 failed", proc=build)
        waiting = {d.get("step_id") for t, d in journal_types(root, plan_id) if t == "step.waiting_approval"}
        assert waiting == {"step_002", "step_003"}, waiting
        rejected = conductor("approve", "step_002", "--reject", "--plan", plan_id, cwd=root)
        assert rejected.returncode == 0, rejected.stderr
        wait_for(lambda: ("step.rejected", "step_002") in [(t, d.get("step_id"))
                                                           for t, d in journal_types(root, plan_id)],
                 what="step_002 rejected", proc=build)
        if keep_running is not None:
            keep_running.append(build)
        else:
            build.send_signal(signal.SIGINT)
            build.wait(60)
            assert any(t == "plan.halted" for t, _ in journal_types(root, plan_id))
        return str(plan_id)
    except BaseException:
        if build.poll() is None:
            build.kill()
            build.wait(10)
        raise
    finally:
        if build.poll() is None and halt:
            build.kill()
            build.wait(10)


def copy_project(source: Path, target: Path) -> Path:
    """A copy a test may change (symlinks kept as symlinks)."""
    shutil.copytree(source, target, symlinks=True)
    return target
