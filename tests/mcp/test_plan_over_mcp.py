"""A whole plan done through MCP only: `conductor build` hands off, an MCP client does every task."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conductor.contract.provenance import decode_predicate
from conductor.project.layout import ProjectLayout
from tests.conftest import require_tool
from tests.mcp.conftest import GIT_ENV, conductor, mcp_client

STEPS = [
    {"id": "step_001", "title": "Add the greeting module", "instruction": "Create hello.py with greet(name).",
     "allowed_files": ["hello.py"], "depends_on": [], "rationale": "Everything imports it.",
     "estimated_confidence": 0.9},
    {"id": "step_002", "title": "Test the greeting", "instruction": "Create tests/test_hello.py.",
     "allowed_files": ["tests/test_hello.py"], "depends_on": ["step_001"], "rationale": "Verification runs it.",
     "estimated_confidence": 0.85},
]
FILES = {
    "step_001": {"hello.py": 'def greet(name):\n    return f"Hello, {name}!"\n'},
    "step_002": {"tests/test_hello.py": "import sys\nfrom pathlib import Path\n\n"
                 "sys.path.insert(0, str(Path(__file__).resolve().parents[1]))\nfrom hello import greet\n\n"
                 "assert greet('Ada') == 'Hello, Ada!'\nprint('ok')\n"},
}


async def test_a_whole_plan_over_mcp(tmp_path: Path) -> None:
    require_tool("git")
    root = tmp_path / "proj"
    root.mkdir()
    init = conductor("init", ".", cwd=root)  # the real command, as a user starts
    assert init.returncode == 0, init.stderr
    project = ProjectLayout.at(root)
    with project.policy_file.open("a") as fh:
        fh.write(f"\nverification:\n  - name: greeting test\n    run: \"{sys.executable} tests/test_hello.py || "
                 f"{sys.executable} hello.py\"\n    timeout_seconds: 60\n")
    build = subprocess.Popen([sys.executable, "-m", "conductor", "build", "Create a greeting module with a test",
                              "--quiet"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, **GIT_ENV})
    done: list[tuple[str, str, str]] = []
    try:
        async with mcp_client(root) as client:
            while build.poll() is None:
                task = await client.call("next_task", {"executor": "mcp-e2e", "wait_seconds": 1})
                assert not task.is_error, task.text
                if not task.data["claimed"]:
                    continue
                t = task.data
                assert Path(t["workspace"]).is_absolute() and Path(t["task_file"]).parent.name == "in_progress"
                if t["kind"] == "plan":
                    goal = re.search(r"Goal: (.*)", t["instruction"])
                    assert goal is not None
                    args = {"plan": {"goal": goal.group(1).strip(), "strategy": "default",
                                     "summary": "module then test", "steps": STEPS}, "files_changed": []}
                else:
                    assert t["verification"] and t["verification"][0]["name"] == "greeting test"
                    for rel, content in FILES[t["task_id"]].items():
                        path = Path(t["workspace"]) / rel
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text(content)
                    args = {"files_changed": sorted(FILES[t["task_id"]])}
                verdict = await client.call("submit_result", {
                    "task_id": t["task_id"], "plan_id": t["plan_id"], "fork_id": t["fork_id"],
                    "executor": "mcp-e2e", "status": "completed", "summary": f"did {t['task_id']}",
                    "explanation": f"# {t['task_id']}\n\nDone over MCP.\n", **args})
                assert not verdict.is_error, verdict.text
                assert verdict.data["verdict"] == "pass", verdict.text
                done.append((t["kind"], t["task_id"], verdict.data["provenance"]))
                if t["kind"] == "step":
                    assert verdict.data["verification"][0]["exit_code"] == 0
                    assert verdict.data["files_changed"]["created"] == sorted(FILES[t["task_id"]])
            status = await client.call("status", {})
            assert not status.is_error and "✓ step_002" in status.text
            explain = await client.call("explain", {"step_id": "step_002"})
            assert not explain.is_error and "step_002" in explain.text
            current = await client.session.read_resource("conductor://plan/current")
            plan_doc = json.loads(current.contents[0].text)  # type: ignore[union-attr]
            assert plan_doc["plans"][0]["outcome"] == "completed"
        output = build.communicate(timeout=60)[0]
    finally:
        if build.poll() is None:
            build.kill()
    assert build.returncode == 0, output
    assert [(k, s) for k, s, _ in done] == [("plan", "step_000"), ("step", "step_001"), ("step", "step_002")]
    assert (root / "hello.py").is_file() and (root / "tests" / "test_hello.py").is_file()
    for _, _, prov in done:
        assert decode_predicate(json.loads((root / prov).read_text()))["executor"] == "mcp-e2e"
    assert not list(root.glob(".conductor/handoff/*/*/in_progress/*")), "claim sidecars are cleaned up"
    verify = conductor("verify", cwd=root)
    assert verify.returncode == 0, verify.stdout + verify.stderr
