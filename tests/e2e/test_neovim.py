"""A real editor: headless Neovim attaches `conductor lsp` to a broken policy.yaml and a task file.

Reads back, through Neovim's own LSP client, the diagnostics (exact lines and columns — the
policy has an emoji and CJK text before an error, so UTF-16 → byte conversion is exercised),
a hover, and the result of ``conductor.validate``. Neovim 0.7.2 cannot register file
watchers, so the server watches the workspace itself. Under ``CI=true`` a missing ``nvim``
fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conductor.contract.checksum import task_checksum
from tests.conftest import require_tool
from tests.lsp.helpers import dump, load, task_file
from tests.support.fixtures import Built

pytestmark = pytest.mark.e2e

PROBE = Path(__file__).parent / "nvim" / "probe.lua"
QUIT_PROBE = Path(__file__).parent / "nvim" / "quit_probe.lua"
REPO = Path(__file__).resolve().parents[2]

BROKEN_POLICY = """\
global_constraints: ["😀 日本語のテスト", 5]
file_rules:
  protected_paterns:
    - "*.lock"
behavior:
  max_diff_lines: 300
  timeout_seconds: 0
"""


def test_neovim_shows_diagnostics_hover_and_validate(tmp_path: Path, demo_project: Built) -> None:
    nvim = require_tool("nvim")
    # `make demo`'s project, built by the real engine (no step waits for approval: a headless
    # Neovim would block on the prompt); its task, re-signed with one path leaving the workspace
    built = demo_project.copy(tmp_path / "proj")
    root = built.root
    (root / ".conductor" / "policy.yaml").write_text(BROKEN_POLICY, encoding="utf-8")
    path = task_file(root, built.plan_id, "step_002", "completed")
    body = {**load(path), "allowed_files": ["tests/test_hello.py", "../secrets.txt"]}
    body["checksum"] = task_checksum(body)
    path.write_text(dump(body), encoding="utf-8")
    out = tmp_path / "probe.json"
    env = {
        **os.environ,
        "PROBE_ROOT": str(root),
        "PROBE_OUT": str(out),
        "PROBE_TASK": str(path),
        "PROBE_HOVER_LINE": "5",
        "PROBE_SERVER": json.dumps([sys.executable, "-m", "conductor", "lsp"]),
        "PYTHONPATH": os.pathsep.join([str(REPO / "server"), os.environ.get("PYTHONPATH", "")]),
        "HOME": str(tmp_path),  # no user config, shada or swap files of the host
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    proc = subprocess.run([nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {PROBE}"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=90, check=False)
    assert out.exists(), f"probe wrote nothing; nvim said:\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(out.read_text(encoding="utf-8"))
    assert "error" not in result, result.get("error")

    policy = [(d["lnum"], d["col"], d["end_col"], d["code"], d["source"]) for d in result["policy"]]
    prefix = BROKEN_POLICY.splitlines()[0].split("5]")[0]
    col = len(prefix.encode("utf-8"))  # Neovim keeps byte columns; the server sent UTF-16 ones
    assert policy == [
        (0, col, col + 1, "policy/type", "conductor"),
        (2, 2, 19, "policy/unknown-key", "conductor"),
        (6, 19, 20, "policy/range", "conductor"),
    ]
    assert "did you mean `protected_patterns`?" in result["policy"][1]["message"]

    task_diags = [(d["lnum"], d["code"]) for d in result["task"]]
    line = path.read_text(encoding="utf-8").splitlines().index('    "../secrets.txt"')
    assert task_diags == [(line, "task/path-escapes")]

    assert "**`max_diff_lines`**" in result["hover"]
    # the policy has three errors elsewhere; this value is still known, with its origin
    assert "**Effective value:** `300` — from project .conductor/policy.yaml:6" in result["hover"], result["hover"]

    validate = result["validate"]
    assert validate["ok"] is False
    by_path = {f["path"]: f for f in validate["files"]}
    assert [d["code"] for d in by_path[".conductor/policy.yaml"]["diagnostics"]] == [
        "policy/type", "policy/unknown-key", "policy/range"]
    ready = next(line for line in result["log"] if "ready" in line)
    assert "file watching: server" in ready and "diagnostics: push" in ready and "encoding: utf-16" in ready


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return not fh.read().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return False


def test_after_qa_no_server_process_remains_and_the_build_is_halted(tmp_path: Path) -> None:
    """`:qa` while a build waits for an agent: the server leaves with Neovim, the plan is resumable."""
    nvim = require_tool("nvim")
    require_tool("git")
    root = tmp_path / "proj"
    (root / ".conductor").mkdir(parents=True)
    (root / ".conductor" / "policy.yaml").write_text("behavior:\n  max_diff_lines: 100\n", encoding="utf-8")
    (root / ".conductor" / "config.yaml").write_text("mode: handoff\nforks: 1\n", encoding="utf-8")
    git_env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "s"], cwd=root, check=True, env=git_env)
    out = tmp_path / "quit.json"
    env = {
        **git_env,
        "PROBE_ROOT": str(root),
        "PROBE_OUT": str(out),
        "PROBE_SERVER": json.dumps([sys.executable, "-m", "conductor", "lsp"]),
        "PYTHONPATH": os.pathsep.join([str(REPO / "server"), os.environ.get("PYTHONPATH", "")]),
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    proc = subprocess.run([nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {QUIT_PROBE}"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=90, check=False)
    result = json.loads(out.read_text(encoding="utf-8"))
    assert "error" not in result and not result.get("build_error"), (result, proc.stderr)
    assert result["build"]["status"] == "running" and result["waiting"], result
    pid = int(result["pid"])
    deadline = time.monotonic() + 3
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"conductor lsp (pid {pid}) outlived `:qa`"
    journal = root / ".conductor" / "plans" / result["build"]["plan_id"] / "journal.jsonl"
    types = [json.loads(line)["type"] for line in journal.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert types[-1] == "plan.halted", types
