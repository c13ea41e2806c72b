"""A plan handed off to several real `conductor agent` processes racing for its tasks (real git): every
attempt in a working copy of its own, judged on its own tree."""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys

from conductor.contract.policy import Policy
from conductor.contract.provenance import decode_predicate
from conductor.handoff import HandoffCoordinator, StepOutcome, TaskSpec, derive_metrics
from conductor.policy import load_policy_file, merge
from conductor.policy.levels import PolicyLevel
from conductor.project.layout import ProjectLayout
from conductor.validation import validate_file
from tests.handoff.conftest import agent_process

PLAN = "a1b2"


def step_policy(layout: ProjectLayout, **behavior: int):
    project = load_policy_file(layout.policy_file)
    assert project is not None
    return merge([project, PolicyLevel("step", Policy.model_validate({"behavior": behavior}))])


async def run_plan(layout: ProjectLayout) -> tuple[dict[str, StepOutcome], list[subprocess.Popen[str]], list]:
    events: list[dict] = []
    async with HandoffCoordinator(layout, on_event=events.append) as coord:
        agents = [agent_process(layout, "--idle-exit", "4", "--name", f"agent{i}") for i in range(3)]
        specs = {
            "hello": TaskSpec(PLAN, "main", "write hello.py: print('hello')", ["hello.py"], title="hello"),
            "util": TaskSpec(PLAN, "main", "write src/util.py: X = 1", ["src/util.py"]),
            "plan": TaskSpec(PLAN, "main", "plan", [], kind="plan"),
            "outside": TaskSpec(PLAN, "outside", "write a.txt: a\nwrite notes.txt: sneaky", ["a.txt"]),
            "protected": TaskSpec(PLAN, "protected", "write b.txt: b\nwrite poetry.lock: changed", ["b.txt"]),
            "bigdiff": TaskSpec(PLAN, "bigdiff", "lines big.txt 80", ["big.txt"]),
            "tamper": TaskSpec(PLAN, "tamper", "write c.txt: c\ntamper", ["c.txt"]),
            "slow": TaskSpec(PLAN, "slow", "sleep 6", ["d.txt"], policy=step_policy(layout, timeout_seconds=2)),
        }
        # claim_timeout: a busy machine may take a while to claim; the slow step's 2 s count from its claim.
        results = await asyncio.gather(*(coord.hand_off(spec, claim_timeout=60) for spec in specs.values()))
        outcomes = dict(zip(specs, results, strict=True))
    for agent in agents:
        agent.wait(timeout=30)
    return outcomes, agents, events


def test_plan_with_racing_agents(project: ProjectLayout) -> None:
    outcomes, agents, events = asyncio.run(run_plan(project))

    expected = {
        "hello": None, "util": None, "plan": None,
        "outside": "evidence/outside-allowed-files", "protected": "evidence/protected-file",
        "bigdiff": "evidence/diff-too-large", "tamper": "evidence/checksum-mismatch", "slow": "evidence/timeout",
    }
    for name, code in expected.items():
        outcome = outcomes[name]
        assert outcome.reason_code == code, (name, outcome.reason)
        assert outcome.status == ("completed" if code is None else "failed"), name
        assert outcome.provenance_path.parent.name == outcome.status
        prov = decode_predicate(json.loads(outcome.provenance_path.read_text()))
        assert prov["verdict"] == ("pass" if code is None else "fail")
        if code:
            assert code in [v["code"] for v in prov["evidence"]["violations"]]
    assert outcomes["plan"].result is not None and outcomes["plan"].result.plan is not None
    assert outcomes["hello"].evidence.created == ["hello.py"]
    assert [c.name for c in outcomes["hello"].evidence.verification] == ["readme present"]
    assert outcomes["outside"].evidence.unreported_changes == ["notes.txt"]
    assert outcomes["bigdiff"].evidence.diff_lines == 80
    assert outcomes["tamper"].evidence.checksum_ok is False

    # Every step claimed exactly once, by exactly one agent.
    outputs = [agent.communicate()[0] for agent in agents]
    claims = collections.Counter(line.split()[1] for out in outputs for line in out.splitlines()
                                 if line.startswith("claimed "))
    assert sorted(claims) == sorted(f"{PLAN}/{o.fork_id}/{o.task_id}" for o in outcomes.values())
    assert set(claims.values()) == {1}

    # The audit logs tell the same story.
    layout = project
    for name, code in expected.items():
        o = outcomes[name]
        records = [json.loads(line) for line in layout.audit_log(o.plan_id, o.fork_id).read_text().splitlines()]
        mine = [r for r in records if r.get("task_id") == o.task_id]
        kinds = [r["event"] for r in mine]
        assert kinds.count("task.claimed") == 1 and kinds.count("task.created") == 1
        if code is None:
            assert kinds[-1] == "step.completed"
        else:
            assert kinds[-1] == "step.failed" and mine[-1]["reason_code"] == code
    slow = [json.loads(line) for line in layout.audit_log(PLAN, "slow").read_text().splitlines()]
    assert "task.timeout" in [r["event"] for r in slow]
    assert {e["event"] for e in events} >= {"task.created", "task.claimed", "result.received", "step.verified",
                                            "step.completed", "step.failed", "task.timeout"}

    # Folders: no double prefixes; completed tasks are schema-valid; nothing of any attempt reached the project:
    # a passed attempt's working copy is gone, a failed one is kept for inspection.
    assert (layout.handoff_dir / f"plan_{PLAN}" / "fork_main" / "completed" / "step_001.task.json").exists()
    assert not list(layout.handoff_dir.glob("plan_plan_*")) and not list(layout.handoff_dir.glob("*/fork_fork_*"))
    for path in (layout.fork_dir(PLAN, "main") / "completed").glob("*.task.json"):
        assert [d for d in validate_file(path) if d.severity == 1] == []
    outside_ws = outcomes["outside"].workspace
    assert (outside_ws / "a.txt").exists() and (outside_ws / "notes.txt").exists()
    assert not outcomes["hello"].workspace.exists()
    assert not any((layout.root / name).exists() for name in ("hello.py", "a.txt", "notes.txt", "big.txt"))
    assert (layout.root / "poetry.lock").read_text() == "locked\n"

    # Signed provenance verifies; metrics.json equals the derivation from the audit logs.
    verify = subprocess.run([sys.executable, "-m", "conductor", "verify", "--root", str(layout.root)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(layout.metrics_file.read_text()) == derive_metrics(layout)
    overall = derive_metrics(layout)["overall"]
    assert (overall["created"], overall["completed"], overall["failed"], overall["timed_out"]) == (8, 3, 5, 1)
