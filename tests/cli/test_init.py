"""`conductor init`: a valid project with the agent-facing contract, never overwriting a user's files."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool


def conductor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conductor", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_init_creates_a_project_whose_files_validate(tmp_path: Path):
    proc = conductor("init", "demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "demo"
    for rel in (
        ".conductor/policy.yaml",
        ".conductor/config.yaml",
        "AGENTS.md",
        ".gitignore",
        ".agents/rules/conductor.md",
        ".agents/workflows/conductor.md",
    ):
        assert (root / rel).is_file(), rel
    assert conductor("validate", cwd=root).returncode == 0
    ignore = (root / ".gitignore").read_text()
    assert ".conductor/keys/" in ignore and ".conductor/handoff/" in ignore
    workflow = (root / ".agents/workflows/conductor.md").read_text()
    assert "in_progress/" in workflow and "allowed_files" in workflow and "result.json" in workflow


def test_init_is_idempotent_and_keeps_user_files(tmp_path: Path):
    (tmp_path / "AGENTS.md").write_text("# Our agents\n\nBe nice.\n")
    (tmp_path / ".gitignore").write_text("node_modules/\n")
    assert conductor("init", ".", cwd=tmp_path).returncode == 0
    agents = (tmp_path / "AGENTS.md").read_text()
    assert agents.startswith("# Our agents\n\nBe nice.\n") and "conductor:begin" in agents
    (tmp_path / ".conductor" / "policy.yaml").write_text("behavior:\n  max_diff_lines: 7\n")
    snapshot = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    second = conductor("init", ".", cwd=tmp_path)
    assert second.returncode == 0
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == snapshot
    assert (tmp_path / "AGENTS.md").read_text().count("conductor:begin") == 1
    assert (tmp_path / ".gitignore").read_text().startswith("node_modules/\n")


def test_policy_show_origin_and_json(tmp_path: Path):
    conductor("init", ".", cwd=tmp_path)
    text = conductor("policy", "--show-origin", cwd=tmp_path).stdout
    assert "max_diff_lines: 500    (project .conductor/policy.yaml:20)" in text
    import json

    data = json.loads(conductor("policy", "--json", cwd=tmp_path).stdout)
    assert data["behavior"]["timeout_seconds"] == {
        "value": 300,
        "origin": {"level": "project", "file": ".conductor/policy.yaml", "line": 22},
    }


def test_policy_refuses_an_invalid_policy_file_with_its_position(tmp_path: Path):
    conductor("init", ".", cwd=tmp_path)
    (tmp_path / ".conductor" / "policy.yaml").write_text("behavior:\n  max_diff_lines: lots\n")
    proc = conductor("policy", cwd=tmp_path)
    assert proc.returncode == 3
    assert ".conductor/policy.yaml:2:19: error policy/type" in proc.stderr


def test_commands_outside_a_project_say_so(tmp_path: Path):
    proc = conductor("policy", cwd=tmp_path)
    assert proc.returncode == 3 and "not inside a Conductor project" in proc.stderr


def test_init_writes_the_agent_schemas_and_refreshes_stale_ones(tmp_path: Path):
    import json

    import jsonschema

    from conductor import __version__
    from conductor.contract.schemas import schema_dir

    assert conductor("init", ".", cwd=tmp_path).returncode == 0
    folder = tmp_path / ".conductor" / "schemas"
    for kind in ("task", "result", "plan", "verdict"):
        shipped = (schema_dir() / f"{kind}.schema.json").read_bytes()
        assert (folder / f"{kind}.schema.json").read_bytes() == shipped, kind
        jsonschema.Draft202012Validator.check_schema(json.loads(shipped))
    assert (folder / "VERSION").read_text() == f"{__version__}\n"

    # an older Conductor's copy (or a hand edit) is refreshed; a symlink planted there is replaced, not followed
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    (folder / "task.schema.json").write_text('{"old": true}')
    (folder / "result.schema.json").unlink()
    (folder / "result.schema.json").symlink_to(outside)
    (folder / "VERSION").write_text("0.1\n")
    again = conductor("init", ".", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert {".conductor/schemas/task.schema.json", ".conductor/schemas/result.schema.json",
            ".conductor/schemas/VERSION"} <= set(report["updated"])
    assert ".conductor/schemas/plan.schema.json" in report["kept"]
    assert outside.read_text() == "{}" and not (folder / "result.schema.json").is_symlink()
    assert (folder / "task.schema.json").read_bytes() == (schema_dir() / "task.schema.json").read_bytes()


def test_init_refuses_a_schemas_path_that_is_not_a_folder(tmp_path: Path):
    (tmp_path / ".conductor").mkdir()
    (tmp_path / ".conductor" / "schemas").symlink_to(tmp_path)
    proc = conductor("init", ".", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert ".conductor/schemas is not a folder" in proc.stderr
def test_secrets_and_keys_are_ignored_by_git(tmp_path: Path):
    """Issue 13: a project `.env` holding a key must never be committed (by Conductor or `git add -A`)."""
    require_tool("git")
    assert conductor("init", ".", cwd=tmp_path).returncode == 0
    ignore = (tmp_path / ".gitignore").read_text().splitlines()
    assert {".env", ".env.*", "*.pem", "*.key", ".conductor/keys/"} <= set(ignore)
    (tmp_path / ".env").write_text("GEMINI_API_KEY=sk-never-commit\n")
    (tmp_path / ".env.local").write_text("OPENAI_API_KEY=sk-never-commit\n")
    (tmp_path / ".env.example").write_text("GEMINI_API_KEY=\n")
    (tmp_path / "deploy.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=tmp_path, capture_output=True,
                            text=True, check=True).stdout.split()
    assert ".env.example" in staged and ".gitignore" in staged
    assert not {".env", ".env.local", "deploy.pem"} & set(staged)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, filled to the last byte (mounted for the test; needs root, which CI has)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                             text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        with contextlib.suppress(OSError), (disk / "filler").open("wb", buffering=0) as fh:
            while True:
                fh.write(b"x" * 4096)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_init_on_a_full_disk_says_so_in_one_line(full_disk: Path):
    proc = conductor("init", "project", cwd=full_disk)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "disk full" in lines[0] and str(full_disk) in lines[0] and "bytes free" in lines[0]
    leftovers = [p.name for p in full_disk.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []  # atomic writes leave no half-written file behind
    (full_disk / "filler").unlink()  # space freed: the same command completes the project
    again = conductor("init", "project", cwd=full_disk)
    assert again.returncode == 0, again.stderr
    assert conductor("validate", cwd=full_disk / "project").returncode == 0


def test_init_brings_its_own_agents_md_section_up_to_date_and_nothing_else(tmp_path: Path):
    old = ("# Our agents\n\nBe nice.\n\n<!-- conductor:begin -->\n## Conductor (handoff contract)\n\n"
           "Contract 1.0 rules.\n<!-- conductor:end -->\n\n## After\n\nOur own text.\n")
    (tmp_path / "AGENTS.md").write_text(old)
    out = conductor("init", ".", cwd=tmp_path).stdout
    assert "updated  AGENTS.md" in out
    agents = (tmp_path / "AGENTS.md").read_text()
    assert agents.startswith("# Our agents\n\nBe nice.\n\n<!-- conductor:begin -->")
    assert agents.endswith("<!-- conductor:end -->\n\n## After\n\nOur own text.\n")
    assert "Contract 1.0 rules." not in agents and "nonce" in agents and agents.count("conductor:begin") == 1
    assert "kept     AGENTS.md" in conductor("init", ".", cwd=tmp_path).stdout


def generated(body: str) -> str:
    """A file as an earlier `conductor init` wrote it: its text, then the digest line."""
    digest = hashlib.sha256(body.encode()).hexdigest()
    return f"{body}\n<!-- conductor:generated sha256={digest} (an older wording of this line) -->\n"


def test_init_refreshes_its_agent_files_until_a_person_edits_them(tmp_path: Path):
    assert conductor("init", ".", cwd=tmp_path).returncode == 0
    rules, workflow = tmp_path / ".agents/rules/conductor.md", tmp_path / ".agents/workflows/conductor.md"
    current = rules.read_text()
    assert "nonce" in current and "conductor:generated sha256=" in current.splitlines()[-1]

    rules.write_text(generated("# Conductor handoff contract\n\nContract 1.0 rules.\n"))  # unedited, older
    edited = generated("---\ndescription: old\n---\n\n# /conductor\n").replace("old", "mine", 1)
    workflow.write_text(edited)
    out = conductor("init", ".", cwd=tmp_path).stdout
    assert "updated  .agents/rules/conductor.md" in out and rules.read_text() == current
    assert "kept     .agents/workflows/conductor.md" in out, "an edited file is the person's"
    assert "description: mine" in workflow.read_text()
    assert "kept     .agents/rules/conductor.md" in conductor("init", ".", cwd=tmp_path).stdout


def test_init_leaves_agent_files_that_are_not_plain_files_alone(tmp_path: Path):
    outside = tmp_path / "outside.md"
    outside.write_text(generated("someone else's file\n"))
    (tmp_path / "proj" / ".agents" / "rules").mkdir(parents=True)
    (tmp_path / "proj" / ".agents" / "workflows").mkdir(parents=True)
    (tmp_path / "proj" / ".agents" / "rules" / "conductor.md").symlink_to(outside)
    os.mkfifo(tmp_path / "proj" / ".agents" / "workflows" / "conductor.md")
    done = conductor("init", ".", cwd=tmp_path / "proj")
    assert done.returncode == 0, done.stderr
    assert "kept     .agents/rules/conductor.md" in done.stdout
    assert "kept     .agents/workflows/conductor.md" in done.stdout
    assert outside.read_text() == generated("someone else's file\n")

    (tmp_path / "proj" / ".agents" / "workflows" / "conductor.md").unlink()
    huge = generated("x" * (3 * 1024 * 1024))  # far larger than any file Conductor writes: not read, kept
    (tmp_path / "proj" / ".agents" / "workflows" / "conductor.md").write_text(huge)
    done = conductor("init", ".", cwd=tmp_path / "proj")
    assert done.returncode == 0 and "kept     .agents/workflows/conductor.md" in done.stdout
    assert (tmp_path / "proj" / ".agents" / "workflows" / "conductor.md").read_text() == huge
