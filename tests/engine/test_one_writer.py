"""One writer per plan: of two `conductor resume` of one halted plan started at the same moment,
exactly one runs and the other exits 3 naming the process that holds the plan (pid, command,
since); `status` shows that holder while the plan runs; a `build` of the locked plan id is refused
the same way; afterwards `verify` is OK and no event was journaled twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.engine.support import conductor, conductor_env, make_project, start, wait_for

EXIT_UNUSABLE = 3


def halted_plan(root: Path, env: dict[str, str], how: str) -> str:
    """A handoff build stopped while it waits for its planning agent: by Ctrl-C, or killed outright."""
    engine = start("build", "Create a greeting module with a test", cwd=root, env=env)
    handoff = root / ".conductor" / "handoff"
    task = wait_for(lambda: list(handoff.glob("plan_*/fork_main/pending/step_000.task.json")), timeout=60)[0]
    engine.send_signal(signal.SIGINT if how == "sigint" else signal.SIGKILL)
    engine.communicate(timeout=60)
    assert engine.returncode == (1 if how == "sigint" else -signal.SIGKILL)
    return task.parent.parent.parent.name.removeprefix("plan_")


def journal_counts(root: Path, plan_id: str) -> Counter[str]:
    events = json.loads(conductor("events", "--json", "--plan", plan_id, cwd=root).stdout)
    return Counter(e["type"] for e in events)


def completed_twice(root: Path, plan_id: str) -> list[tuple[str, str]]:
    events = json.loads(conductor("events", "--json", "--plan", plan_id, "--type", "step.completed", cwd=root).stdout)
    keys = Counter((e["data"]["fork_id"], e["data"]["step_id"]) for e in events)
    return [k for k, n in keys.items() if n > 1]


def build_with_plan_id(root: Path, plan_id: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The engine API's `build` of a given plan id (what the language server does), in a process of its own."""
    code = ("import asyncio, sys\nfrom conductor.engine import api\n"
            "try:\n"
            f"    asyncio.run(api.run_goal({str(root)!r}, 'again', plan_id={plan_id!r}))\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n"
            "    sys.exit(3)\n")
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("how", ["sigint", "kill"])
def test_two_concurrent_resumes_one_runs_the_other_names_the_holder(tmp_path: Path, how: str):
    root = make_project(tmp_path / "proj", "", mode="handoff")
    env = conductor_env(None, key=None)
    plan_id = halted_plan(root, env, how)
    before = journal_counts(root, plan_id)

    first = start("resume", "--json", "--plan", plan_id, cwd=root, env=env)
    second = start("resume", "--json", "--plan", plan_id, cwd=root, env=env)
    # One of them is refused at once; the other holds the plan and waits for an agent.
    refused = wait_for(lambda: next((p for p in (first, second) if p.poll() is not None), None), timeout=60)
    runner = second if refused is first else first
    _, err = refused.communicate(timeout=10)
    assert refused.returncode == EXIT_UNUSABLE, err
    assert runner.poll() is None, "both resumes stopped"
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"plan {plan_id} is being run by process {runner.pid} " in err, err
    assert f"(`conductor resume --json --plan {plan_id}`, since 20" in err, err

    # While it runs, `status` names the holder, as JSON and as text.
    status = json.loads(conductor("status", "--json", "--plan", plan_id, cwd=root).stdout)
    held = status["plans"][0]["held_by"]
    assert held["pid"] == runner.pid and "resume" in held["command"] and held["since"].startswith("20")
    text = conductor("status", "--plan", plan_id, cwd=root).stdout
    assert f"running in process {runner.pid} " in text

    # A build of the locked plan id (the engine API, as the language server calls it) is refused too.
    other = build_with_plan_id(root, plan_id, env)
    assert other.returncode == 3 and other.stdout.startswith("PlanLockedError "), other.stdout + other.stderr
    assert f"process {runner.pid}" in other.stdout

    agent = start("agent", "--command", f"{sys.executable} -m conductor.demo.agent", "--idle-exit", "30", cwd=root,
                  env=env)
    try:
        out, err = runner.communicate(timeout=180)
    finally:
        agent.kill()
        agent.communicate()
    assert runner.returncode == 0, err
    assert json.loads(out)["outcome"] == "completed"

    verified = conductor("verify", "--json", cwd=root)
    assert verified.returncode == 0, verified.stdout
    after = journal_counts(root, plan_id)
    assert after["plan.resumed"] - before["plan.resumed"] == 1, "the refused resume journaled something"
    assert after["plan.created"] == 1 and after["plan.merged"] == 1 and after["plan.finished"] == 1
    assert completed_twice(root, plan_id) == []
    assert json.loads(conductor("status", "--json", "--plan", plan_id, cwd=root).stdout)["plans"][0]["held_by"] is None

    # Once it has finished, a build of that plan id is refused as an existing plan (never started twice).
    again = build_with_plan_id(root, plan_id, env)
    assert again.returncode == 3 and "already exists" in again.stdout, again.stdout + again.stderr


def test_a_reader_asking_who_holds_the_plan_never_makes_an_engine_refuse(tmp_path: Path):
    """`status` takes the lock shared for an instant to ask; an engine starting then must not mistake it
    for a second engine."""
    from conductor.engine.lock import PlanLock, plan_holder
    from conductor.project.layout import ProjectLayout

    layout = ProjectLayout.at(tmp_path)
    (tmp_path / ".conductor").mkdir()
    stop = time.monotonic() + 3
    prober = subprocess.Popen([sys.executable, "-c", (
        "import time\nfrom conductor.engine.lock import plan_holder\nfrom conductor.project.layout import "
        f"ProjectLayout\nlayout = ProjectLayout.at({str(tmp_path)!r})\nend = time.monotonic() + 4\n"
        "while time.monotonic() < end:\n    plan_holder(layout, 'p1')\n")])
    try:
        taken = 0
        while time.monotonic() < stop:
            with PlanLock(layout, "p1", purpose="test"):
                taken += 1
                assert plan_holder(layout, "p1") == {"pid": os.getpid(), "host": os.uname().nodename,
                                                     "command": "test", "since": plan_holder(layout, "p1")["since"]}
    finally:
        prober.kill()
        prober.wait()
    assert taken > 10
