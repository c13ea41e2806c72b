"""The attacks of tests/security, by an agent Conductor starts itself: prevented, not just detected.

tests/security runs hostile `conductor agent --command` processes with the sandbox off and
checks that every attack is detected and undone. Here the same agent runs in the bubblewrap
sandbox (`behavior.sandbox: required`): an attack on anything outside the attempt's working
copy fails at once with "Read-only file system", the attempt fails, nothing of it lands
anywhere, and the honest retry completes the step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.security.support import build, conductor, make_project, tree, user_state

OUTSIDE_ATTACKS = ["hook", "config", "branch", "root", "policy"]


@pytest.mark.parametrize("attack", OUTSIDE_ATTACKS)
def test_an_attack_outside_the_working_copy_fails_read_only_and_changes_nothing(attack: str, tmp_path: Path) -> None:
    require_tool("bwrap")
    root = make_project(tmp_path / "proj", sandbox="required")
    before = user_state(root)
    run = build(root, [{"id": "step_001", "instruction": f"write a.txt: a\nattack {attack}", "allowed": ["a.txt"]}])

    failed = [e["data"] for e in run.events if e["type"] == "step.failed"]
    assert [f["cause"] for f in failed] == ["evidence/executor-failed"], (failed, run.agents_output)
    # the write itself failed (the agent script hides git's own message: only its exit status shows)
    assert "Read-only file system" in failed[0]["reason"] or "returned non-zero exit status" in failed[0]["reason"]
    assert run.summary["outcome"] == "completed" and run.completed() == ["step_001"]  # the honest retry
    after = user_state(root)
    assert after["hooks"] == before["hooks"] and after["config"] == before["config"]
    assert after["head"] == before["head"]
    assert {k: v for k, v in after["refs"].items() if k != "refs/heads/main"} == \
        {k: v for k, v in before["refs"].items() if k != "refs/heads/main"}
    assert not (root / "ROOT-WRITE.txt").exists() and not list(root.glob("INJECTED-*"))
    changed = {p for p in set(after["checkout"]) | set(before["checkout"])
               if after["checkout"].get(p) != before["checkout"].get(p)}
    assert changed <= {"a.txt"}, changed  # only the verified, merged work
    assert conductor("verify", cwd=root).returncode == 0


def test_the_agent_itself_still_commits_in_its_own_repository_inside_the_sandbox(tmp_path: Path) -> None:
    require_tool("bwrap")
    root = make_project(tmp_path / "proj", sandbox="required")
    marker = tmp_path / "hooks-ran"  # under /tmp: inside the sandbox that is its private /tmp
    run = build(root, [{"id": "step_001", "instruction": "write a.txt: a\nattack own-hook", "allowed": ["a.txt"]}],
                extra_env={"CONDUCTOR_TEST_MARKER": str(marker)})
    # the agent's commit, its own hooks included, worked in its own repository on the first attempt …
    assert run.failures("step_001") == [] and run.completed() == ["step_001"], run.agents_output
    assert not marker.exists()  # … and what those hooks wrote outside it went to the sandbox's /tmp only
    assert "a.txt" in tree(root)
    explanation = next((root / ".conductor" / "handoff").rglob("step_001.explanation.md")).read_text()
    assert "bubblewrap sandbox" in explanation
    assert json.loads(conductor("status", "--json", cwd=root).stdout)["plans"][0]["outcome"] == "completed"
