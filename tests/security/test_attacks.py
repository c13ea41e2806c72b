"""Attacks on the verdict, each by a real agent process that is hostile on its first attempt.

For every attack: the attempt is refused with its own reason code; nothing of it reaches the fork
or the user's branch; the user's checkout, hooks, config and refs are as they were (the merged,
verified work aside); ``conductor verify`` is OK; and the retry, done honestly, completes the step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.security.support import build, conductor, make_project, tree, user_state

A = {"id": "step_001", "instruction": "write a.txt: a", "allowed": ["a.txt"]}


def attacked(attack: str, allowed: list[str] | None = None) -> dict:
    return {"id": "step_001", "instruction": f"write a.txt: a\nattack {attack}", "allowed": allowed or ["a.txt"]}


def then(step: dict, instruction: str, allowed: list[str]) -> dict:
    return {"id": "step_002", "instruction": instruction, "allowed": allowed, "depends_on": [step["id"]]}


CASES = {
    # git state shared beyond the attempt
    "hook in the project's .git/hooks": ([attacked("hook")], "step_001", "evidence/git-tampered"),
    "shared config change": ([attacked("config")], "step_001", "evidence/git-tampered"),
    "another branch moved": ([attacked("branch")], "step_001", "evidence/git-tampered"),
    # inside the attempt: judged by the resulting tree
    "commit --amend adds a file": ([attacked("amend")], "step_001", "evidence/outside-allowed-files"),
    "reset --hard drops a merged step's file": ([A, then(A, "write b.txt: b\nattack reset", ["b.txt"])], "step_002",
                                                 "evidence/outside-allowed-files"),
    # the file tree, with lstat
    "symlink to a file outside": ([attacked("symlink")], "step_001", "evidence/symlink-escape"),
    "chmod +x outside allowed_files": ([attacked("chmod src/app.py")], "step_001", "evidence/outside-allowed-files"),
    "file replaced by a symlink": ([attacked("type README.md")], "step_001", "evidence/symlink"),
    # writes outside the attempt
    "write to the project root": ([attacked("root")], "step_001", "evidence/outside-workspace"),
    "loosening .conductor/policy.yaml": ([attacked("policy")], "step_001", "evidence/policy-tampered"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_attack_is_refused_undone_and_an_honest_retry_completes(name: str, tmp_path: Path) -> None:
    steps, target, code = CASES[name]
    root = make_project(tmp_path / "proj")
    before = user_state(root)
    run = build(root, steps)

    assert run.failures(target) == [code], (run.failures(target), run.agents_output)
    assert run.summary["outcome"] == "completed" and run.summary["merged"], run.summary
    assert run.completed() == sorted(s["id"] for s in steps)
    merged = tree(root)
    for path in ("a.txt", *(["b.txt"] if len(steps) > 1 else [])):
        assert path in merged
    for leaked in ("sneak.txt", "passwd", "real.txt", "ROOT-WRITE.txt", "INJECTED-pre-commit"):
        assert leaked not in merged and not (root / leaked).exists(), leaked
    assert merged["src/app.py"] == "100644" and merged["README.md"] == "100644"

    after = user_state(root)
    assert after["hooks"] == before["hooks"] and after["config"] == before["config"]
    assert after["head"] == before["head"]
    assert {k: v for k, v in after["refs"].items() if k != "refs/heads/main"} == \
        {k: v for k, v in before["refs"].items() if k != "refs/heads/main"}
    changed = {p for p in set(after["checkout"]) | set(before["checkout"])
               if after["checkout"].get(p) != before["checkout"].get(p)}
    assert changed <= {"a.txt", "b.txt"}, changed  # only the verified, merged work
    verified = conductor("verify", cwd=root)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The plan completed: the refused attempt's working copy, kept while the plan ran, is gone.
    assert not (root / ".conductor" / "attempts" / run.summary["plan_id"]).exists()


def test_hooks_in_the_attempts_own_repository_never_run_by_conductor(tmp_path: Path) -> None:
    """An agent may keep hooks in its own repository and commit there; Conductor runs none of them."""
    root = make_project(tmp_path / "proj")
    marker = tmp_path / "hooks-ran"
    run = build(root, [attacked("own-hook")], extra_env={"CONDUCTOR_TEST_MARKER": str(marker)})
    assert run.failures("step_001") == [] and run.completed() == ["step_001"]
    assert "a.txt" in tree(root)
    # the agent's own `git commit` ran its pre-commit and post-commit hooks; Conductor ran none of them
    assert marker.read_text().split() == ["pre-commit", "post-commit"]


def test_a_symlinked_folder_never_reaches_a_later_step(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = make_project(tmp_path / "proj")
    first = attacked(f"symlink-dir {outside}")
    run = build(root, [first, then(first, "write b.txt: b\nattack through", ["b.txt"])])
    assert run.failures("step_001") == ["evidence/symlink-escape"] and run.failures("step_002") == []
    assert list(outside.iterdir()) == []
    assert "link" not in tree(root) and {"a.txt", "b.txt"} <= set(tree(root))


def test_a_failed_plan_keeps_the_refused_attempts_copy_and_status_says_where(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", policy="behavior:\n  max_repairs: 0\n")
    run = build(root, [attacked("amend")])
    assert run.summary["outcome"] == "failed" and run.failures("step_001") == ["evidence/outside-allowed-files"]
    (plan,) = json.loads(conductor("status", "--json", cwd=root).stdout)["plans"]
    (step,) = [s for f in plan["forks"] for s in f["steps"] if s["step_id"] == "step_001"]
    kept = root / ".conductor" / "attempts" / plan["plan_id"] / "main" / "step_001.1"
    assert step["kept_copies"] == [str(kept)] and (kept / "sneak.txt").exists(), step
    assert f"failed attempt's working copy kept for inspection: {kept}" in conductor("status", cwd=root).stdout
    assert f"`{kept.relative_to(root)}`" in conductor("explain", "step_001", cwd=root).stdout
