"""`conductor verify`: a clean project passes; one edited byte anywhere is named."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conductor.handoff import HandoffCoordinator, TaskSpec
from conductor.project.layout import ProjectLayout
from tests.handoff.conftest import make_project


@pytest.fixture
def verified_project(tmp_path: Path, agent_thread) -> ProjectLayout:
    layout = make_project(tmp_path / "proj")

    async def run() -> None:
        async with HandoffCoordinator(layout) as coord:
            agent_thread(layout)
            for i in range(3):
                await coord.hand_off(TaskSpec("v1", "main", f"write f{i}.txt: {i}", [f"f{i}.txt"]))

    asyncio.run(run())
    return layout


def verify(layout: ProjectLayout) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conductor", "verify", "--root", str(layout.root)],
                          capture_output=True, text=True)


def flip_payload_byte(path: Path, needle: bytes) -> None:
    """Flip one bit inside the signed Statement (re-encoded, so the envelope stays well-formed)."""
    envelope = json.loads(path.read_bytes())
    payload = base64.b64decode(envelope["payload"])
    at = payload.index(needle) + 1
    envelope["payload"] = base64.b64encode(payload[:at] + bytes([payload[at] ^ 1]) + payload[at + 1:]).decode()
    path.write_text(json.dumps(envelope, indent=2))


def test_clean_project_verifies(verified_project: ProjectLayout) -> None:
    out = verify(verified_project)
    assert out.returncode == 0, out.stdout
    report = json.loads(subprocess.run([sys.executable, "-m", "conductor", "verify", "--json", "--root",
                                        str(verified_project.root)], capture_output=True, text=True).stdout)
    assert report["ok"] and report["records_checked"] == 3 and report["logs_checked"] == 1, report


def test_one_byte_in_audit_log_is_named(verified_project: ProjectLayout) -> None:
    audit = verified_project.audit_log("v1", "main")
    lines = audit.read_bytes().splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if b'"task.claimed"' in line)
    lines[target] = lines[target].replace(b'"task_id":"step_00', b'"task_id":"step_90', 1)
    audit.write_bytes(b"".join(lines))
    out = verify(verified_project)
    assert out.returncode == 1
    assert f".conductor/handoff/plan_v1/fork_main/audit.log:{target + 1}:" in out.stdout
    assert "edited" in out.stdout


def test_one_byte_in_provenance_is_named(verified_project: ProjectLayout) -> None:
    prov = verified_project.fork_dir("v1", "main") / "completed" / "step_002.provenance.json"
    flip_payload_byte(prov, b'"pass"')
    out = verify(verified_project)
    assert out.returncode == 1
    assert re.search(r"completed/step_002\.provenance\.json:\d+ \(step_002\)", out.stdout), out.stdout
    assert "does not match: the envelope was altered" in out.stdout


def test_truncated_audit_log_is_detected(verified_project: ProjectLayout) -> None:
    audit = verified_project.audit_log("v1", "main")
    lines = audit.read_bytes().splitlines(keepends=True)
    cut = max(i for i, line in enumerate(lines) if b'"step.verified"' in line)
    audit.write_bytes(b"".join(lines[:cut]))  # still a valid chain, but the newest verdict is gone
    out = verify(verified_project)
    assert out.returncode == 1
    assert "anchored" in out.stdout and "step_003" in out.stdout


def test_deleted_newest_provenance_is_detected(verified_project: ProjectLayout) -> None:
    (verified_project.fork_dir("v1", "main") / "completed" / "step_003.provenance.json").unlink()
    out = verify(verified_project)
    assert out.returncode == 1
    assert "provenance.head" in out.stdout and "step_003" in out.stdout
