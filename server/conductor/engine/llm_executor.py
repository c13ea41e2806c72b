"""llm mode: Conductor itself is the agent. It claims its own task, asks the model for edits,
and applies them, only inside ``allowed_files``, through the sandboxed writer
(:func:`conductor.sandbox.apply.apply_edits`: in bubblewrap where only the working copy is writable).

The step goes through exactly the same files and checks as a step done by an IDE agent: the
task is written to ``pending/``, claimed by rename, the result written beside it, and the
coordinator verifies the evidence and signs the provenance. An edit the model proposes
outside ``allowed_files`` or on a protected file is refused here (never written) and named
in the result; the verifier would fail the step anyway if anything else changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
from pathlib import Path

from conductor.contract.task import Task
from conductor.engine.faults import halt_reason, infrastructure_failure
from conductor.handoff.claim import claim_next
from conductor.llm import LLMError, StructuredLLM
from conductor.llm.prompts import edit_prompt
from conductor.project.layout import ProjectLayout
from conductor.sandbox import SandboxSettings
from conductor.sandbox.apply import apply_edits
from conductor.storage import atomic_write_json, atomic_write_text
from conductor.storage.regular import read_regular

EXECUTOR_NAME = "conductor-llm"
log = logging.getLogger("conductor.engine.llm")
MAX_CONTEXT_FILES = 40
MAX_CONTEXT_BYTES = 256 << 10
MAX_TASK_BYTES = 8 << 20


def _read(path: Path) -> str | None:
    """A regular file's text (never through a symlink, at most ``MAX_CONTEXT_BYTES``), else ``None``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        return fh.read(MAX_CONTEXT_BYTES).decode("utf-8", errors="replace")


def _existing_matches(workspace: Path, allowed: list[str]) -> dict[str, str | None]:
    """Current content of each allowed file (globs expanded over existing files)."""
    contents: dict[str, str | None] = {}
    for entry in allowed:
        if any(ch in entry for ch in "*?["):
            for path in sorted(workspace.glob(entry))[:MAX_CONTEXT_FILES]:
                text = _read(path)
                if text is not None:
                    contents[path.relative_to(workspace).as_posix()] = text
        else:
            contents[entry] = _read(workspace / entry)
    return contents


def execute(layout: ProjectLayout, claimed: Path, llm: StructuredLLM) -> Path:
    """Do one claimed task with the model; write its result and explanation; return the result path."""
    task = Task.model_validate_json(read_regular(claimed, MAX_TASK_BYTES))
    workspace = (layout.root / task.workspace).resolve()
    result_path = claimed.with_name(f"{task.task_id}.result.json")
    explanation_path = claimed.with_name(f"{task.task_id}.explanation.md")
    written: list[str] = []
    refused: list[str] = []
    try:
        prompt = edit_prompt(task.instruction, task.allowed_files, _existing_matches(workspace, task.allowed_files),
                             task.constraints)
        reply = llm.complete_json(prompt.messages, prompt.schema, prompt.purpose)
        rules = task.sandbox
        settings = SandboxSettings(mode=rules.mode, network=rules.network) if rules is not None else None
        report = apply_edits(workspace, list(reply.data["files"]), task.allowed_files, task.protected_patterns,
                             settings=settings, project_root=layout.root)
        written = [*report.written, *report.deleted]
        refused = [r["path"] for r in report.refused]
        summary = str(reply.data.get("summary", ""))
        if refused:
            summary += f" (refused edits outside allowed_files: {', '.join(refused)})"
        result = {"status": "completed", "summary": summary, "error": None}
    except (LLMError, OSError, KeyError, ValueError, RuntimeError) as exc:
        if infrastructure_failure(exc):
            raise  # not the step's failure: the plan halts, and the task is done again on resume
        result = {"status": "failed", "summary": "", "error": str(exc)}
    atomic_write_text(
        explanation_path,
        f"# {task.task_id}: {task.title or task.instruction[:60]}\n\n"
        f"Executed by Conductor in llm mode.\n\nFiles written: {', '.join(written) or 'none'}\n\n"
        + (f"Refused (outside allowed_files or protected): {', '.join(refused)}\n\n" if refused else "")
        + (result["summary"] or result["error"] or "") + "\n",
    )
    atomic_write_json(
        result_path,
        {
            "contract_version": task.contract_version,
            **({"nonce": task.nonce} if task.nonce else {}),
            "task_id": task.task_id,
            "status": result["status"],
            "files_changed": written,
            "summary": result["summary"],
            "error": result["error"],
            "executor": f"{EXECUTOR_NAME}@{os.uname().nodename}:{os.getpid()}",
        },
    )
    return result_path


async def serve_fork(layout: ProjectLayout, plan_id: str, fork_id: str, llm: StructuredLLM,
                     stop: asyncio.Event, poll_seconds: float = 0.05) -> int:
    """Claim and execute this fork's pending tasks until ``stop`` is set; returns how many ran."""
    done = 0
    while not stop.is_set():
        claimed = await asyncio.to_thread(claim_next, layout, plan_id, fork_id)
        if claimed is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)
            continue
        try:
            await asyncio.to_thread(execute, layout, claimed, llm)
        except Exception as exc:  # the agent must outlive one bad task; the step fails, not the fork
            if infrastructure_failure(exc):
                log.warning("llm executor: %s stopped: %s", claimed.name, halt_reason(exc))
                raise  # the machine's or the endpoint's fault: the runner halts the plan
            log.exception("llm executor: %s failed", claimed.name)
            await asyncio.to_thread(_write_failure, claimed, f"the llm executor crashed: {exc}")
        done += 1
    return done


def _write_failure(claimed: Path, error: str) -> None:
    """A failed result for a claimed task, unless the task is gone (withdrawn or set aside)."""
    if not claimed.exists():
        return
    task_id = claimed.name.removesuffix(".task.json")
    try:
        body = json.loads(read_regular(claimed, MAX_TASK_BYTES))
    except (OSError, ValueError):
        body = {}
    echo = {"contract_version": "2.0", "nonce": body["nonce"]} if isinstance(body, dict) and isinstance(
        body.get("nonce"), str) else {"contract_version": "1.0"}
    atomic_write_json(claimed.with_name(f"{task_id}.result.json"), {
        **echo, "task_id": task_id, "status": "failed", "files_changed": [], "summary": "",
        "error": error, "executor": f"{EXECUTOR_NAME}@{os.uname().nodename}:{os.getpid()}"})


def describe(result_path: Path) -> str:
    data = json.loads(result_path.read_text())
    return f"{data['task_id']}: {data['status']}"
