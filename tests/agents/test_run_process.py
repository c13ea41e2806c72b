"""One agent process, as `conductor agent` runs it: output, timeouts, stragglers, stdin, redaction.

Real processes in a real bubblewrap sandbox; each test is a way a tool misbehaves.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conductor.agents.run import OUTPUT_KEPT_BYTES, agent_env, run_process
from conductor.sandbox import Mounts, SandboxSettings
from tests.conftest import require_tool

SANDBOX = SandboxSettings(mode="required")


@pytest.fixture(autouse=True)
def _bwrap() -> None:
    require_tool("bwrap")


def sh(script: str, ws: Path, timeout: float = 30, **kwargs: object):  # type: ignore[no-untyped-def]
    return run_process(["/bin/sh", "-c", script], cwd=ws, env=agent_env([], {}), timeout=timeout,
                       mounts=Mounts(ws), settings=SANDBOX, **kwargs)  # type: ignore[arg-type]


def test_a_flood_of_output_keeps_only_the_tail(tmp_path: Path) -> None:
    run = sh("head -c 30000000 /dev/zero | tr '\\0' x; echo; echo THE-END", tmp_path)
    assert run.exit_code == 0
    assert run.stdout.endswith("THE-END\n")
    assert len(run.stdout) < OUTPUT_KEPT_BYTES + 200
    assert run.stdout.startswith("[… ") and "earlier bytes not kept]" in run.stdout


def test_a_tool_that_never_ends_is_killed_at_the_timeout_with_its_children(tmp_path: Path) -> None:
    started = time.monotonic()
    run = sh("sleep 60 & sleep 60", tmp_path, timeout=1)
    assert run.timed_out and run.exit_code is None
    assert time.monotonic() - started < 30, "it waited for the 60 s sleeps instead of killing them at 1 s"


def test_a_straggler_left_behind_by_the_tool_never_writes_after_it_exits(tmp_path: Path) -> None:
    run = sh("(sleep 1; echo late > late.txt) & echo done", tmp_path)
    assert run.exit_code == 0 and run.stdout == "done\n"
    time.sleep(2)
    assert not (tmp_path / "late.txt").exists()


def test_the_prompt_arrives_on_stdin(tmp_path: Path) -> None:
    run = sh("cat > got.txt", tmp_path, stdin="the whole prompt\n" * 1000)
    assert run.exit_code == 0 and (tmp_path / "got.txt").read_text() == "the whole prompt\n" * 1000


def test_a_tool_that_ignores_stdin_does_not_block_the_agent(tmp_path: Path) -> None:
    run = sh("exit 3", tmp_path, stdin="x" * 5_000_000)
    assert run.exit_code == 3


def test_a_key_the_tool_prints_is_redacted(tmp_path: Path) -> None:
    key = "sk-the-project-model-key-42"
    run = sh(f"echo using {key}; echo {key} >&2", tmp_path, secrets=[key])
    assert key not in run.stdout + run.stderr
    assert run.stdout == "using [REDACTED]\n" and run.stderr == "[REDACTED]\n"
