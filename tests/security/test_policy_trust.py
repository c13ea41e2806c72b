"""Only a person loosens policy, and the policy a plan runs under is the one it started with.

Every test runs a real `conductor build` in handoff mode with a real agent process (tests/security/
file_agent.py, which speaks the file contract like an IDE agent, or the MCP SDK's client against
`conductor mcp`), real git, and the CLI for status, explain, approve and verify.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import require_tool
from tests.engine.support import conductor, conductor_env, start, wait_for

AGENT = Path(__file__).resolve().parent / "file_agent.py"
GOAL = "Write the settings and the data"


def new_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    require_tool("git")
    root = tmp_path / "proj"
    root.mkdir()
    env = conductor_env(None, key=None)  # no model: the plan comes from the planning agent
    init = conductor("init", ".", cwd=root, env=env)
    assert init.returncode == 0, init.stderr
    return root, env


def run_agent(root: Path, tmp_path: Path, script: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    path = tmp_path / f"script-{len(list(tmp_path.glob('script-*')))}.json"
    path.write_text(json.dumps(script))
    return subprocess.Popen([sys.executable, str(AGENT), str(root), str(path), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def status(root: Path, env: dict[str, str]) -> dict[str, Any]:
    """The (only) plan of the project as `conductor status --json` shows it; {} before it exists."""
    proc = conductor("status", "--json", cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr
    plans = json.loads(proc.stdout)["plans"]
    return dict(plans[0]) if plans else {}


def step_state(root: Path, env: dict[str, str], step_id: str) -> dict[str, Any] | None:
    plan = status(root, env)
    for fork in plan.get("forks", []):
        for step in fork["steps"]:
            if step["step_id"] == step_id:
                return dict(step)
    return None


def waiting(root: Path, env: dict[str, str], step_id: str) -> dict[str, Any]:
    return dict(wait_for(lambda: (s := step_state(root, env, step_id)) and s["state"] == "waiting_approval" and s,
                         timeout=120))


def audit(root: Path) -> list[dict[str, Any]]:
    (log,) = (root / ".conductor" / "handoff").glob("plan_*/fork_main/audit.log")
    return [json.loads(line) for line in log.read_text().splitlines()]


def handed_off(root: Path, step_id: str) -> bool:
    return any(r["event"] == "task.created" and r["task_id"] == step_id for r in audit(root))


def finish(*procs: subprocess.Popen[str]) -> list[str]:
    outs = []
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        outs.append(proc.communicate(timeout=60)[0])
    return outs


def verdicts(output: str) -> list[tuple[str, int, str, str | None]]:
    return [(r["task_id"], r["attempt"], r["verdict"], r["reason_code"])
            for r in (json.loads(line) for line in output.splitlines() if line.startswith("{"))]


# ---------------------------------------------------------------- (a) a plan that asks to loosen policy

LOOSENING_PLAN = {
    "summary": "settings, then more data",
    "policy": {"file_rules": {"unprotect": [".env"]},
               "behavior": {"allow_loosen": ["max_diff_lines"], "max_diff_lines": 100000}},
    "steps": [
        {"id": "step_001", "title": "Write the settings", "instruction": "Create .env and data.txt.",
         "allowed_files": [".env", "data.txt"], "depends_on": []},
        {"id": "step_002", "title": "More data", "instruction": "Create more.txt.",
         "allowed_files": ["more.txt"], "depends_on": ["step_001"]},
    ],
}
BIG = "".join(f"row {i}\n" for i in range(800))  # over the project's max_diff_lines (500)


def test_a_plan_that_loosens_policy_waits_for_a_person_then_runs_loosened_or_is_skipped(tmp_path: Path) -> None:
    root, env = new_project(tmp_path)
    ignore = root / ".gitignore"  # init ignores .env; this project tracks it on purpose, once a person allows it
    ignore.write_text("".join(line for line in ignore.read_text().splitlines(True) if line.strip() != ".env"))
    agent = run_agent(root, tmp_path, {"plan": LOOSENING_PLAN, "steps": {
        "step_001": {"*": {"files": {".env": "API_URL=http://127.0.0.1:9\n", "data.txt": BIG}}},
        "step_002": {"*": {"files": {"more.txt": "more\n"}}}}})
    build = start("build", GOAL, "--json", cwd=root, env=env)
    try:
        held = waiting(root, env, "step_001")
        # held at LOW confidence, the loosening named with where it was asked for
        assert held["confidence"]["level"] == "low"
        asked = held["requested_loosening"]
        assert any("release protected pattern `.env`" in a and "main.plan.json" in a for a in asked), asked
        assert any("max_diff_lines 500 → 100000" in a for a in asked), asked
        text = conductor("status", cwd=root, env=env).stdout
        assert "the plan asks to loosen the policy (only a person may)" in text and "`.env`" in text, text
        explain = json.loads(conductor("explain", "step_001", "--json", cwd=root, env=env).stdout)
        (factor,) = [f for f in explain["confidence"]["factors"] if f["name"] == "policy_loosening"]
        assert "`.env`" in factor["detail"] and "max_diff_lines 500 → 100000" in factor["detail"]
        assert "policy_loosening" in explain["markdown"]
        # nothing runs until a person decides
        subprocess.run(["sleep", "1.5"], check=True)
        assert not handed_off(root, "step_001")
        assert not list(root.glob(".conductor/handoff/plan_*/fork_main/*/step_001.task.json"))
        assert step_state(root, env, "step_001")["state"] == "waiting_approval"  # type: ignore[index]

        assert conductor("approve", "step_001", cwd=root, env=env).returncode == 0
        wait_for(lambda: step_state(root, env, "step_002")["state"] == "waiting_approval", 120)  # type: ignore[index]
        assert not handed_off(root, "step_002")
        rejected = conductor("approve", "step_002", "--reject", cwd=root, env=env)
        assert rejected.returncode == 0, rejected.stderr
        build.communicate(timeout=120)
    finally:
        out, _ = finish(agent, build)

    # after approval the step ran under the loosened policy: .env released, 800 lines accepted
    assert ("step_001", 1, "pass", None) in verdicts(out)
    (fork,) = root.glob(".conductor/handoff/plan_*/fork_main")
    task = json.loads((fork / "completed" / "step_001.task.json").read_text())
    assert ".env" not in task["protected_patterns"] and task["max_diff_lines"] == 100000
    verified = [r for r in audit(root) if r["event"] == "step.verified" and r["task_id"] == "step_001"]
    assert verified[-1]["verdict"] == "pass" and verified[-1]["diff_lines"] > 500 and ".env" in verified[-1]["created"]
    plan_id = fork.parent.name.removeprefix("plan_")
    shown = subprocess.run(["git", "show", f"conductor/{plan_id}/main:.env"], cwd=root, capture_output=True, text=True)
    assert shown.stdout == "API_URL=http://127.0.0.1:9\n"
    events = json.loads(conductor("events", "--json", "--step", "step_001", cwd=root, env=env).stdout)
    kinds = [e["type"] for e in events]
    assert kinds.index("step.approved") < kinds.index("step.handed_off"), kinds  # handed off only once approved
    # the rejected step never ran
    assert step_state(root, env, "step_002")["state"] == "skipped"  # type: ignore[index]
    assert not handed_off(root, "step_002") and not (root / "more.txt").exists()
    assert conductor("verify", cwd=root, env=env).returncode == 0


# ---------------------------------------------------------------- (b) the policy is pinned; an agent's edit fails

PINNED_PLAN = {
    "summary": "two small files",
    "steps": [
        {"id": "step_001", "title": "Write a", "instruction": "Create a.txt with five lines.",
         "allowed_files": ["a.txt"], "depends_on": []},
        {"id": "step_002", "title": "Write b", "instruction": "Create b.txt.",
         "allowed_files": ["b.txt"], "depends_on": ["step_001"]},
    ],
}


def test_the_running_plan_keeps_its_pinned_policy_and_an_agent_that_edits_it_is_refused(tmp_path: Path) -> None:
    root, env = new_project(tmp_path)
    policy = root / ".conductor" / "policy.yaml"  # every step waits for approval: then no attempt is in flight
    policy.write_text(policy.read_text().replace("  approval_below: 0.5 ", "  approval_below: 0.99 ")
                      .replace("  caution_below: 0.8 ", "  caution_below: 0.995 "))
    agent = run_agent(root, tmp_path, {"plan": PINNED_PLAN, "steps": {
        "step_001": {"*": {"files": {"a.txt": "1\n2\n3\n4\n5\n"}}},
        "step_002": {"1": {"files": {"b.txt": "b\n"}, "append": {".conductor/policy.yaml": "\n# agent: relax\n"},
                           "name": "hostile-agent"},
                     "*": {"files": {"b.txt": "b\n"}, "name": "honest-agent"}}}})
    build = start("build", GOAL, "--json", cwd=root, env=env)
    try:
        waiting(root, env, "step_001")
        assert status(root, env)["policy_changed"] is None
        # the person edits the policy mid-plan: tighter limits and a verification that always fails
        edited = policy.read_text().replace("max_diff_lines: 500 ", "max_diff_lines: 1 ") + (
            "verification:\n  - name: never passes\n    run: exit 1\n    timeout_seconds: 10\n")
        policy.write_text(edited)
        assert "pinned when it started" in status(root, env)["policy_changed"]
        assert "policy: .conductor/policy.yaml changed since this plan started" in \
            conductor("status", cwd=root, env=env).stdout
        assert conductor("approve", "step_001", cwd=root, env=env).returncode == 0
        waiting(root, env, "step_002")
        assert conductor("approve", "step_002", cwd=root, env=env).returncode == 0
        summary = json.loads(build.communicate(timeout=180)[0])
    finally:
        out, _ = finish(agent, build)

    runs = verdicts(out)
    # step_001 passed under the pinned policy (5 lines > the new limit of 1; the new failing check did not run)
    assert ("step_001", 1, "pass", None) in runs
    # the agent that edited .conductor/policy.yaml failed its attempt; an honest retry completed the step
    assert ("step_002", 1, "fail", "evidence/policy-tampered") in runs and ("step_002", 2, "pass", None) in runs
    assert summary["outcome"] == "completed" and summary["merged"], summary
    assert policy.read_text() == edited, "the agent's edit was undone; the person's stays"
    (fork,) = root.glob(".conductor/handoff/plan_*/fork_main")
    first = json.loads((fork / "verdicts" / "step_002.1.verdict.json").read_text())
    assert first["violations"][0]["path"] == ".conductor/policy.yaml" and "policy.yaml" in first["reason"]
    task = json.loads((fork / "completed" / "step_001.task.json").read_text())
    assert task["max_diff_lines"] == 500 and task["verification"] == []
    assert (root / "a.txt").read_text() == "1\n2\n3\n4\n5\n" and (root / "b.txt").read_text() == "b\n"
    assert conductor("verify", cwd=root, env=env).returncode == 0


# ---------------------------------------------------------------- (c) over MCP

MCP_PLAN = {
    "summary": "hello, then world",
    "steps": [
        {"id": "step_001", "title": "Hello", "instruction": "Create hello.txt.", "allowed_files": ["hello.txt"],
         "depends_on": []},
        {"id": "step_002", "title": "World", "instruction": "Create world.txt.", "allowed_files": ["world.txt"],
         "depends_on": ["step_001"]},
    ],
}


async def test_mcp_hands_out_the_whole_task_and_a_forged_nonce_is_refused(tmp_path: Path) -> None:
    from tests.mcp.conftest import mcp_client

    root, env = new_project(tmp_path)
    with (root / ".conductor" / "policy.yaml").open("a") as fh:
        fh.write("\nverification:\n  - name: hello exists\n    run: test -f hello.txt\n    timeout_seconds: 30\n")
    build = start("build", GOAL, "--json", cwd=root, env=env)
    forger = None
    try:
        async with mcp_client(root) as client:
            async def claim() -> dict[str, Any]:
                for _ in range(240):
                    answer = await client.call("next_task", {"executor": "mcp-agent", "wait_seconds": 1})
                    assert not answer.is_error, answer.text
                    if answer.data["claimed"]:
                        return answer.data
                raise AssertionError("no task")

            async def submit(task: dict[str, Any], **args: Any) -> dict[str, Any]:
                answer = await client.call("submit_result", {
                    "task_id": task["task_id"], "plan_id": task["plan_id"], "fork_id": task["fork_id"],
                    "executor": "mcp-agent", "status": "completed", "summary": "done", "explanation": "# done\n",
                    **args})
                assert not answer.is_error, answer.text
                return answer.data

            planning = await claim()
            assert planning["kind"] == "plan" and planning["attempt"] == 1 and planning["verification"] == []
            assert (await submit(planning, plan={**MCP_PLAN, "goal": GOAL}, files_changed=[]))["verdict"] == "pass"

            step = await claim()
            workspace = Path(step["workspace"])
            assert step["task_id"] == "step_001" and step["attempt"] == 1 and len(step["nonce"]) == 32
            assert workspace.is_absolute() and (workspace / ".git").is_dir() and workspace != root
            assert step["max_files_changed"] == 20 and step["max_diff_lines"] == 500
            assert step["verification"] == [{"name": "hello exists", "run": "test -f hello.txt",
                                             "timeout_seconds": 30, "pass_env": []}]
            verdict_file = Path(step["verdict_file"])
            assert verdict_file.is_absolute() and verdict_file.name == "step_001.1.verdict.json"
            (workspace / "hello.txt").write_text("hello\n")
            assert (await submit(step, files_changed=["hello.txt"]))["verdict"] == "pass"
            wait_for(verdict_file.exists, 30)  # written right after the provenance submit_result answers from
            written = json.loads(verdict_file.read_text())
            assert (written["verdict"], written["attempt"], written["nonce"]) == ("pass", 1, step["nonce"])

            # a file agent answers step_002 with another attempt's nonce: refused, with its reason
            forger = run_agent(root, tmp_path, {"plan": MCP_PLAN, "steps": {
                "step_002": {"*": {"files": {"world.txt": "world\n"}, "nonce": "wrong"}}}}, "--max-tasks", "1")
            line = forger.stdout.readline() if forger.stdout else ""
            assert verdicts(line) == [("step_002", 1, "fail", "evidence/nonce-mismatch")], line
            explain = await client.call("explain", {"step_id": "step_002"})
            assert "evidence/nonce-mismatch" in explain.text, explain.text

            retry = await claim()
            assert (retry["task_id"], retry["attempt"]) == ("step_002", 2)
            (Path(retry["workspace"]) / "world.txt").write_text("world\n")
            final = await submit(retry, files_changed=["world.txt"])
            assert final["verdict"] == "pass", final
        summary = json.loads(build.communicate(timeout=120)[0])
    finally:
        finish(*(p for p in (build, forger) if p is not None))
    assert summary["outcome"] == "completed", summary
    assert (root / "hello.txt").is_file() and (root / "world.txt").is_file()
    assert conductor("verify", cwd=root, env=env).returncode == 0
