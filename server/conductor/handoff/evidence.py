"""Judging a step by evidence: what changed, against what was allowed, and what the checks say.

Why a module of its own: this is the verdict. Given the task as Conductor wrote it (never
the copy on disk), the snapshots before and after, the agent's result and the effective
policy, it produces the ``Evidence`` recorded in provenance and a verdict:

1. the task file is re-checked: its bytes must still be the bytes Conductor wrote, and its
   ``checksum`` must match its content (``evidence/checksum-mismatch`` otherwise);
2. files created / modified / deleted and the diff size come from the snapshots; files the
   agent changed but did not list in ``files_changed`` are reported as unreported changes;
3. every changed file is checked against ``allowed_files`` and the protected patterns, the
   diff size against ``max_diff_lines`` (``policy.enforce.check_changes``);
4. an executor that reports ``failed`` fails the step (``evidence/executor-failed``); a plan
   task must return a valid plan (``evidence/invalid-plan``);
5. only when all that passes are the policy's verification commands run in the workspace,
   each with its timeout; exit code, duration, SHA-256 and tail of the output are kept
   (``evidence/verification-failed`` when one fails or times out).

The step passes when no violation was found; the reason names the first violation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from conductor.contract.checksum import task_checksum
from conductor.contract.policy import VerificationCommand
from conductor.contract.provenance import CommandEvidence, Evidence, Violation
from conductor.contract.result import Result
from conductor.contract.task import Task
from conductor.handoff.snapshot import Changes
from conductor.policy.enforce import check_changes
from conductor.policy.globs import normalize
from conductor.policy.merge import EffectivePolicy

PRIORITY = (
    "evidence/checksum-mismatch", "evidence/nonce-mismatch", "evidence/result-before-claim",
    "evidence/timeout", "evidence/unclaimed", "evidence/executor-failed",
    "evidence/protected-file", "evidence/outside-allowed-files", "evidence/path-absolute",
    "evidence/path-escapes", "evidence/path-parent", "evidence/diff-too-large", "evidence/too-many-files",
    "evidence/invalid-plan", "evidence/verification-failed",
)
TAIL_LINES = 20
TAIL_CHARS = 2000


@dataclass
class Judgement:
    evidence: Evidence
    verdict: str  # "pass" | "fail"
    reason_code: str | None
    reason: str


def check_task_file(path: Path, written_digest: str) -> tuple[bool, str]:
    """Whether the task file at ``path`` is still exactly what Conductor wrote."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False, f"task file {path.name} is gone"
    if hashlib.sha256(data).hexdigest() != written_digest:
        try:
            body = json.loads(data)
            consistent = isinstance(body, dict) and body.get("checksum") == task_checksum(body)
        except ValueError:
            consistent = False
        detail = "its checksum was recomputed to hide it" if consistent else "its checksum no longer matches"
        return False, f"task file was edited after Conductor wrote it ({detail})"
    return True, ""


def tail(text: str) -> str:
    lines = text.splitlines()[-TAIL_LINES:]
    return "\n".join(lines)[-TAIL_CHARS:]


async def run_command(command: VerificationCommand, workspace: Path,
                      env: dict[str, str] | None = None) -> CommandEvidence:
    """Run one verification command in ``workspace`` with its timeout (never blocks the loop)."""
    start = time.monotonic()
    proc = await asyncio.create_subprocess_shell(
        command.run, cwd=workspace, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, start_new_session=True, env={**os.environ, **(env or {})})
    timed_out = False
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=command.timeout_seconds)
    except TimeoutError:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = await proc.communicate()
    duration = time.monotonic() - start
    text = out.decode("utf-8", "replace")
    return CommandEvidence(
        name=command.name, command=command.run, exit_code=None if timed_out else proc.returncode,
        timed_out=timed_out, duration_seconds=round(duration, 3),
        output_sha256=hashlib.sha256(out).hexdigest(), output_tail=tail(text))


def violations_from_changes(changes: Changes, task: Task, policy: EffectivePolicy) -> list[Violation]:
    found = check_changes(changes.changed, changes.diff_lines, task.allowed_files, policy,
                          max_diff_lines=task.max_diff_lines)
    return [Violation(code=v.code, message=v.message, path=v.path) for v in found]


def _plan_violations(result: Result) -> list[Violation]:
    from conductor.validation import validate_document
    from conductor.validation.diagnostics import Severity

    if result.plan is None:
        return [Violation(code="evidence/invalid-plan", message="a plan task's result carries no `plan`")]
    _doc, diags = validate_document(json.dumps(result.plan), "plan")
    return [Violation(code="evidence/invalid-plan", message=f"plan {d.code}: {d.message}")
            for d in diags if d.severity == Severity.ERROR][:10]


def primary(violations: list[Violation]) -> Violation | None:
    if not violations:
        return None
    rank = {code: i for i, code in enumerate(PRIORITY)}
    return min(violations, key=lambda v: rank.get(v.code, len(PRIORITY)))


def base_evidence(changes: Changes, reported: list[str], checksum_ok: bool) -> Evidence:
    reported_norm = {normalize(p) for p in reported}
    return Evidence(
        created=changes.created, modified=changes.modified, deleted=changes.deleted,
        diff_lines=changes.diff_lines, reported_files=list(reported),
        unreported_changes=[p for p in changes.changed if p not in reported_norm],
        checksum_ok=checksum_ok)


def result_violations(task: Task, result: Result, before_claim: bool) -> list[Violation]:
    """Whether the result answers *this* attempt: the echoed nonce, and written after the claim."""
    found = []
    if task.nonce is not None and result.nonce != task.nonce:
        what = "does not echo the task's nonce" if result.nonce is None else "echoes another attempt's nonce"
        found.append(Violation(code="evidence/nonce-mismatch",
                               message=f"the result {what} (attempt {task.attempt}); it answers another attempt "
                               "or was forged"))
    if before_claim:
        found.append(Violation(code="evidence/result-before-claim",
                               message="the result file was in in_progress/ before the task was claimed"))
    return found


async def judge(task: Task, task_path: Path, written_digest: str, result: Result, changes: Changes,
                policy: EffectivePolicy, workspace: Path, *, before_claim: bool = False) -> Judgement:
    """Evidence and verdict for a step whose result was ingested."""
    checksum_ok, checksum_msg = check_task_file(task_path, written_digest)
    evidence = base_evidence(changes, result.files_changed, checksum_ok)
    violations: list[Violation] = []
    if not checksum_ok:
        violations.append(Violation(code="evidence/checksum-mismatch", message=checksum_msg,
                                    path=task_path.name))
    violations.extend(result_violations(task, result, before_claim))
    if result.status == "failed":
        violations.append(Violation(code="evidence/executor-failed",
                                    message=f"the executor reported failure: {result.error or 'no reason given'}"))
    violations.extend(violations_from_changes(changes, task, policy))
    if task.kind == "plan" and result.status == "completed":
        violations.extend(_plan_violations(result))
    if not violations:
        env = {"CONDUCTOR_TASK_ID": task.task_id, "CONDUCTOR_PLAN_ID": task.plan_id,
               "CONDUCTOR_FORK_ID": task.fork_id}
        for command in policy.commands:
            ran = await run_command(command, workspace, env)
            evidence.verification.append(ran)
            if ran.timed_out or ran.exit_code != 0:
                what = f"timed out after {command.timeout_seconds}s" if ran.timed_out else f"exited {ran.exit_code}"
                violations.append(Violation(code="evidence/verification-failed",
                                            message=f"verification `{command.name}` {what}"))
    evidence.violations = violations
    first = primary(violations)
    if first is None:
        return Judgement(evidence, "pass", None, "all checks passed")
    return Judgement(evidence, "fail", first.code, first.message)
