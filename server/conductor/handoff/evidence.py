"""Judging an attempt by evidence: what changed, against what was allowed, and what the checks say.

Why a module of its own: this is the verdict. Given the task as Conductor wrote it (never the copy
on disk), what the attempt's working copy really holds (:class:`conductor.handoff.tree.Scan`), the
agent's result and the effective policy, it produces the ``Evidence`` recorded in provenance:

1. the task file is re-checked: its bytes must still be the bytes Conductor wrote, and its
   ``checksum`` must match its content (``evidence/checksum-mismatch``);
2. the result must answer this attempt: it echoes the task's nonce (``evidence/nonce-mismatch``)
   and was written after the claim (``evidence/result-before-claim``);
3. every changed path (created, modified, deleted, mode- or type-changed) is checked against
   ``allowed_files`` and the protected patterns, the diff size against ``max_diff_lines``, the
   number of files against ``max_files_changed`` (``policy.enforce.check_changes``);
4. a symlink created or changed is refused unless the policy allows symlinks, and one that resolves
   outside the workspace always is; FIFOs, devices, paths git cannot store and oversized files too;
5. an executor that reports ``failed`` fails the step; a plan task must return a valid plan;
6. only when all that passes do the verification commands run (in a clean checkout of the verified
   tree, in the sandbox the policy asks for — they run the agent's code —, secrets removed from
   their environment); exit code, duration, SHA-256 and the redacted tail of the output are kept;
7. anything that changed outside the attempt while it ran (the user's checkout, Conductor's own
   files, the shared git state) fails it (``evidence/outside-workspace``, ``evidence/policy-tampered``,
   ``evidence/git-tampered``).

The step passes when no violation was found; the reason names the most serious one (``PRIORITY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor import secrets
from conductor.contract.checksum import task_checksum
from conductor.contract.globs import normalize
from conductor.contract.policy import VerificationCommand
from conductor.contract.provenance import CommandEvidence, Evidence, Violation
from conductor.contract.result import Result
from conductor.contract.task import Task
from conductor.handoff.tree import MAX_FILE_BYTES, Scan, symlink_escapes
from conductor.policy.enforce import check_changes
from conductor.policy.merge import EffectivePolicy
from conductor.sandbox import SandboxSettings, prepare, project_mounts
from conductor.validation import validate_document
from conductor.validation.diagnostics import Severity

PRIORITY = (
    "evidence/checksum-mismatch", "evidence/nonce-mismatch", "evidence/result-before-claim",
    "evidence/git-tampered", "evidence/policy-tampered", "evidence/outside-workspace",
    "evidence/timeout", "evidence/unclaimed", "evidence/executor-failed",
    "evidence/symlink-escape", "evidence/symlink", "evidence/special-file", "evidence/path-invalid",
    "evidence/file-too-large", "evidence/protected-file", "evidence/outside-allowed-files", "evidence/path-absolute",
    "evidence/path-escapes", "evidence/path-parent", "evidence/diff-too-large", "evidence/too-many-files",
    "evidence/invalid-plan", "evidence/verification-failed", "evidence/integration-conflict",
)
TAIL_LINES = 20
TAIL_CHARS = 2000
POLICY_FILES = (".conductor/",)


@dataclass
class Judgement:
    evidence: Evidence
    verdict: str  # "pass" | "fail"
    reason_code: str | None
    reason: str

    def add(self, violations: Sequence[Violation]) -> None:
        """Add violations found later (verification, outside writes, integration) and re-derive the verdict."""
        if not violations:
            return
        self.evidence.violations.extend(violations)
        first = primary(self.evidence.violations)
        assert first is not None
        self.verdict, self.reason_code, self.reason = "fail", first.code, first.message

    def add_verification(self, runs: list[CommandEvidence], commands: Sequence[VerificationCommand] = ()) -> None:
        self.evidence.verification.extend(runs)
        timeouts = {c.name: c.timeout_seconds for c in commands}
        failed = []
        for run in runs:
            if run.timed_out or run.exit_code != 0:
                limit = f" after {timeouts[run.name]}s" if run.name in timeouts else ""
                what = f"timed out{limit}" if run.timed_out else f"exited {run.exit_code}"
                failed.append(Violation(code="evidence/verification-failed",
                                        message=f"verification `{run.name}` {what}"))
        self.add(failed)


def check_task_file(path: Path, written_digest: str) -> tuple[bool, str]:
    """Whether the task file at ``path`` is still exactly what Conductor wrote."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(8 << 20)
    except FileNotFoundError:
        return False, f"task file {path.name} is gone"
    except OSError:
        return False, f"task file {path.name} is not a regular file any more"
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


def verification_env(task: Task, keep: Sequence[str] = ()) -> dict[str, str]:
    """The environment of a verification command: Conductor's own without any secret but those it names."""
    return {**secrets.scrubbed_env(keep=keep), "CONDUCTOR_TASK_ID": task.task_id, "CONDUCTOR_PLAN_ID": task.plan_id,
            "CONDUCTOR_FORK_ID": task.fork_id}


async def run_command(command: VerificationCommand, workspace: Path, env: dict[str, str] | None = None, *,
                      settings: SandboxSettings | None = None, project_root: Path | None = None) -> CommandEvidence:
    """Run one verification command in ``workspace`` with its timeout (never blocks the loop).

    With ``settings`` it runs in the sandbox they ask for (the command runs the agent's code: tests),
    where only ``workspace`` is writable and the project's keys are hidden.
    """
    start = time.monotonic()
    argv = ["/bin/sh", "-c", command.run]
    if settings is not None:
        argv = prepare(argv, project_mounts(workspace, project_root), settings).argv
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=workspace, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
        env=env if env is not None else secrets.scrubbed_env())
    timed_out = False
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=command.timeout_seconds)
    except TimeoutError:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = await proc.communicate()
    duration = time.monotonic() - start
    text = secrets.redactor().text(out.decode("utf-8", "replace"))
    return CommandEvidence(
        name=command.name, command=command.run, exit_code=None if timed_out else proc.returncode,
        timed_out=timed_out, duration_seconds=round(duration, 3),
        output_sha256=hashlib.sha256(out).hexdigest(), output_tail=tail(text))


async def run_verification(commands: Sequence[VerificationCommand], room: Path, task: Task,
                           settings: SandboxSettings | None = None,
                           project_root: Path | None = None) -> list[CommandEvidence]:
    """Each verification command in ``room`` (a clean checkout of the verified tree), in order, sandboxed as
    ``settings`` ask."""
    return [await run_command(command, room, verification_env(task, command.pass_env), settings=settings,
                              project_root=project_root) for command in commands]


def violations_from_changes(found: Scan, task: Task, policy: EffectivePolicy, workspace: Path) -> list[Violation]:
    out = [Violation(code=v.code, message=v.message, path=v.path)
           for v in check_changes(found.changed, found.diff_lines, task.allowed_files, policy,
                                  max_diff_lines=task.max_diff_lines)]
    allow_links = bool(policy.limits["allow_symlinks"].value) if "allow_symlinks" in policy.limits else False
    for path, target in sorted(found.symlinks.items()):
        if symlink_escapes(path, target, workspace):
            out.append(Violation(code="evidence/symlink-escape",
                                 message=f"{path} is a symlink to `{target}`, outside the workspace", path=path))
        elif not allow_links:
            out.append(Violation(code="evidence/symlink", message=f"{path} is a symlink (to `{target}`); symlinks are "
                                 "not allowed (behavior.allow_symlinks)", path=path))
    out += [Violation(code="evidence/special-file", message=f"{p} is not a regular file, folder or symlink", path=p)
            for p in found.special]
    out += [Violation(code="evidence/path-invalid", message=f"{p}: git cannot store this path", path=p)
            for p in found.invalid]
    out += [Violation(code="evidence/file-too-large", message=f"{p} is larger than {MAX_FILE_BYTES >> 20} MiB", path=p)
            for p in found.too_large]
    return out


def _plan_violations(result: Result) -> list[Violation]:
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


def base_evidence(found: Scan, reported: list[str], checksum_ok: bool) -> Evidence:
    reported_norm = {normalize(p) for p in reported}
    return Evidence(
        created=found.created, modified=found.modified, deleted=found.deleted,
        mode_changed=found.mode_changed, type_changed=found.type_changed,
        diff_lines=found.diff_lines, reported_files=list(reported),
        unreported_changes=[p for p in found.changed if p not in reported_norm],
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


def judge(task: Task, task_path: Path, written_digest: str, result: Result, found: Scan,
          policy: EffectivePolicy, workspace: Path, *, before_claim: bool = False) -> Judgement:
    """Evidence and verdict for an attempt whose result was ingested (verification and outside writes come later)."""
    checksum_ok, checksum_msg = check_task_file(task_path, written_digest)
    evidence = base_evidence(found, result.files_changed, checksum_ok)
    violations: list[Violation] = []
    if not checksum_ok:
        violations.append(Violation(code="evidence/checksum-mismatch", message=checksum_msg, path=task_path.name))
    violations.extend(result_violations(task, result, before_claim))
    if result.status == "failed":
        violations.append(Violation(code="evidence/executor-failed",
                                    message=f"the executor reported failure: {result.error or 'no reason given'}"))
    violations.extend(violations_from_changes(found, task, policy, workspace))
    if task.kind == "plan" and result.status == "completed":
        violations.extend(_plan_violations(result))
    judgement = Judgement(evidence, "pass", None, "all checks passed")
    judgement.add(violations)
    return judgement


def outside_violations(changed: list[str], git_changes: list[str], incidents: Sequence[Any], others: int,
                       notes: list[str]) -> list[Violation]:
    """Violations for what changed outside the attempt while it ran (see the module docstring)."""
    out: list[Violation] = []
    overlap = (f"; {others} other attempt(s) were running at the same time, so Conductor cannot tell which agent "
               "wrote it") if others else ""
    detail = ("; " + "; ".join(notes)) if notes else ""
    ours = [p for p in changed if p.startswith(POLICY_FILES)]
    theirs = [p for p in changed if not p.startswith(POLICY_FILES)]
    if ours:
        out.append(Violation(code="evidence/policy-tampered", path=ours[0],
                             message=f"Conductor's own files changed while the attempt ran: {', '.join(ours[:10])}"
                             f"{overlap}{detail}"))
    if theirs:
        out.append(Violation(code="evidence/outside-workspace", path=theirs[0],
                             message=f"files outside the attempt's working copy changed while it ran: "
                             f"{', '.join(theirs[:10])}{overlap}{detail}"))
    if git_changes:
        out.append(Violation(code="evidence/git-tampered",
                             message=f"git state shared beyond the attempt changed while it ran (undone): "
                             f"{', '.join(git_changes[:10])}{overlap}{detail}"))
    for incident in incidents:
        out.append(Violation(code="evidence/outside-workspace",
                             message=f"while this attempt ran, {', '.join(incident.paths[:10])} changed outside the "
                             f"attempts (seen and undone when {incident.detected_by[2]} finished); "
                             f"{incident.overlapping + 1} attempts overlapped, so Conductor cannot tell which agent "
                             "did it"))
    return out
