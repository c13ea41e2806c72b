"""Applying a model's edits from inside the sandbox: only allowed, unprotected, link-free paths are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conductor.sandbox import SandboxSettings
from conductor.sandbox.apply import apply_edits, apply_in_process
from tests.conftest import require_tool


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "project"
    ws = root / ".conductor" / "attempts" / "a1"
    ws.mkdir(parents=True)
    (root / ".conductor" / "keys").mkdir()
    (ws / "src").mkdir()
    (ws / "src" / "old.py").write_text("old\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, ws / "linked")
    os.symlink(outside / "target.txt", ws / "src" / "link.py")
    return root, ws


EDITS = [
    {"path": "src/new.py", "content": "new\n"},
    {"path": "src/old.py", "delete": True, "content": ""},
    {"path": "src/deep/er/file.py", "content": "deep\n"},
    {"path": "README.md", "content": "not allowed\n"},
    {"path": "src/app.lock", "content": "protected\n"},
    {"path": "../escape.py", "content": "escape\n"},
    {"path": "/etc/passwd", "content": "absolute\n"},
    {"path": "linked/through.py", "content": "through a symlinked folder\n"},
    {"path": "src/link.py", "content": "through a symlinked file\n"},
]
ALLOWED = ["src/**", "linked/**"]
PROTECTED = ["*.lock"]


def check(report_refused: list[dict[str, str]], ws: Path, tmp_path: Path) -> None:
    refused = {r["path"]: r["reason"] for r in report_refused}
    assert refused["README.md"] == "outside allowed_files"
    assert refused["src/app.lock"] == "protected by `*.lock`"
    assert "leads outside the workspace" in refused["../escape.py"]
    assert "is absolute" in refused["/etc/passwd"]
    assert refused["linked/through.py"] == "`linked` is a symlink"
    assert refused["src/link.py"] == "`src/link.py` is a symlink"
    assert (ws / "src" / "new.py").read_text() == "new\n"
    assert (ws / "src" / "deep" / "er" / "file.py").read_text() == "deep\n"
    assert not (ws / "src" / "old.py").exists()
    assert not (ws / "README.md").exists() and not (ws / "src" / "app.lock").exists()
    assert os.listdir(tmp_path / "outside") == []
    assert not (ws.parent / "escape.py").exists()


def test_edits_applied_inside_the_sandbox_write_only_what_the_rules_allow(
    layout: tuple[Path, Path], tmp_path: Path
) -> None:
    require_tool("bwrap")
    root, ws = layout
    report = apply_edits(ws, EDITS, ALLOWED, PROTECTED, settings=SandboxSettings(mode="required"), project_root=root)
    assert report.sandbox.startswith("bubblewrap sandbox")
    assert report.written == ["src/new.py", "src/deep/er/file.py"] and report.deleted == ["src/old.py"]
    check(report.refused, ws, tmp_path)


def test_the_same_rules_hold_in_process_when_the_sandbox_is_off(layout: tuple[Path, Path], tmp_path: Path) -> None:
    root, ws = layout
    report = apply_edits(ws, EDITS, ALLOWED, PROTECTED, settings=SandboxSettings(mode="off"), project_root=root)
    assert report.sandbox == "not sandboxed (behavior.sandbox: off)"
    check(report.refused, ws, tmp_path)


def test_a_file_where_a_folder_is_needed_is_refused_not_crashed(tmp_path: Path) -> None:
    (tmp_path / "src").write_text("a file, not a folder\n")
    report = apply_in_process(tmp_path, [{"path": "src/x.py", "content": "x"}], ["src/**"], [])
    assert report.refused == [{"path": "src/x.py", "reason": "`src` is not a folder"}]


def test_a_fifo_in_the_way_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")
    report = apply_in_process(tmp_path, [{"path": "pipe.py", "content": "x"}], ["*.py"], [])
    assert report.refused == [{"path": "pipe.py", "reason": "`pipe.py` exists and is not a regular file"}]


def test_the_module_refuses_a_bad_request_with_a_message_and_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "conductor.sandbox.apply"], input=json.dumps({"files": 3}),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("conductor.sandbox.apply: bad request on stdin:")
    assert "Traceback" not in done.stderr
    bad_json = subprocess.run([sys.executable, "-m", "conductor.sandbox.apply"], input="{nope",
                              capture_output=True, text=True, timeout=60)
    assert bad_json.returncode == 2 and "Traceback" not in bad_json.stderr
