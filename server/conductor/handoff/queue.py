"""The hand-off queue seen from an agent that is not a process of ours (MCP): claim, submit, find the verdict.

Why a module of its own: it is the agent side of the file contract (like
``conductor.handoff.agent``), as plain functions over the project folder; the MCP server
reaches it only through ``conductor.engine.api`` and translates tool calls. Nothing here
judges a step: a submitted result is the same ``in_progress/step_NNN.result.json`` an agent
would write by hand, and the engine's ``HandoffCoordinator`` (running in ``conductor build``,
``resume``, the language server …) verifies it and writes the provenance this module waits for.

Who claimed a task: ``next_task`` claims with the same atomic rename as the file protocol,
then records the claimer in a sidecar ``in_progress/step_NNN.claim.json`` (written
atomically; ``{"executor", "claimed_at", "deadline", "task_digest", "via": "mcp"}``). A submit is accepted
only from the executor named there, and only while the sidecar's ``task_digest`` matches
the task file in ``in_progress/`` (a stale sidecar of an earlier attempt never vouches for a
new one). The sidecar is removed once the verdict is known; stale ones (their task has left
``in_progress/``) are swept by the next claim in that fork. The audit log is not used for
this: its events are a published contract and are written by the coordinator alone.

Every refusal raises :class:`QueueError` *before* anything is written, with a message that
says what is wrong and where. Files agents write are read only when they are regular files
of bounded size (:mod:`conductor.project.files`): a FIFO or a symlink is refused, never waited on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor.contract.checksum import task_checksum
from conductor.contract.provenance import Violation, decode_predicate
from conductor.contract.result import Result
from conductor.contract.task import Task
from conductor.handoff.audit import parse_ts, utc_now
from conductor.handoff.claim import claim, iter_pending
from conductor.handoff.evidence import primary
from conductor.policy import PolicyError, load_policy_file, merge
from conductor.policy.levels import load_plan_levels
from conductor.project.files import read_regular
from conductor.project.layout import TASK_STATES, ProjectLayout, bare_id
from conductor.storage.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from conductor.validation import validate_document
from conductor.validation.diagnostics import Severity

CLAIM_SUFFIX = ".claim.json"
MAX_FILE_BYTES = 4 * 1024 * 1024  # a task, claim record or provenance record is a few kilobytes


class QueueError(Exception):
    """A call the queue refuses; nothing was changed. The message says what and where."""


@dataclass(frozen=True)
class StepRef:
    plan_id: str
    fork_id: str
    task_id: str
    state: str  # pending | in_progress | completed | failed

    @property
    def where(self) -> str:
        return f"plan {self.plan_id} fork {self.fork_id}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _forks(layout: ProjectLayout, plan_id: str | None, fork_id: str | None) -> list[tuple[str, str]]:
    """(plan, fork) pairs under handoff/, optionally filtered."""
    return layout.handoff_forks(plan_id, fork_id)


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a regular file; ``None`` when it is missing, not regular, too large or not JSON."""
    try:
        data = json.loads(read_regular(path, MAX_FILE_BYTES))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_filters(layout: ProjectLayout, plan_id: str | None, fork_id: str | None) -> tuple[str | None, str | None]:
    """Bare ids of the filters; refuses a plan or fork that has no handoff folder."""
    plan_id = bare_id(plan_id, "plan_") if plan_id else None
    fork_id = bare_id(fork_id, "fork_") if fork_id else None
    if plan_id is not None or fork_id is not None:
        known = _forks(layout, None, None)
        if plan_id is not None and plan_id not in {p for p, _ in known}:
            plans = sorted({p for p, _ in known})
            raise QueueError(f"no plan {plan_id!r} under {layout.relative(layout.handoff_dir)}/"
                             + (f" (known: {', '.join(plans)})" if plans else " (no plan has handed off a task yet)"))
        if fork_id is not None and not _forks(layout, plan_id, fork_id):
            forks = sorted({f for p, f in known if plan_id is None or p == plan_id})
            raise QueueError(f"no fork {fork_id!r}" + (f" in plan {plan_id}" if plan_id else "")
                             + f" under {layout.relative(layout.handoff_dir)}/ (known: {', '.join(forks) or 'none'})")
    return plan_id, fork_id


# --------------------------------------------------------------------------- claim


def _sweep_claims(layout: ProjectLayout, plan_id: str, fork_id: str) -> None:
    """Remove claim sidecars whose task has left ``in_progress/``."""
    folder = layout.state_dir(plan_id, fork_id, "in_progress")
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(folder):
            if name.endswith(CLAIM_SUFFIX) and not name.startswith("."):
                stem = name.removesuffix(CLAIM_SUFFIX)
                if not (folder / f"{stem}.task.json").exists():
                    with contextlib.suppress(FileNotFoundError):
                        (folder / name).unlink()


def read_claim(layout: ProjectLayout, ref: StepRef) -> dict[str, Any] | None:
    return _read_json(layout.step_file(ref.plan_id, ref.fork_id, "in_progress", ref.task_id, CLAIM_SUFFIX))


def _refuse_task(task_file: Path, stem: str, executor: str, error: str) -> None:
    """What the reference agent does with a task it cannot work on: a ``failed`` result."""
    folder = task_file.parent
    atomic_write_text(folder / f"{stem}.explanation.md", f"# {stem}\n\nRefused over MCP: {error}\n")
    try:
        body = json.loads(read_regular(task_file, MAX_FILE_BYTES))
    except (OSError, ValueError):
        body = {}
    result = Result.answering(body if isinstance(body, dict) else {}, task_id=stem, status="failed", summary="",
                              error=error, executor=executor, started_at=utc_now(), finished_at=utc_now())
    atomic_write_text(folder / f"{stem}.result.json", result.model_dump_json(indent=2, exclude_none=True) + "\n")


def describe_task(layout: ProjectLayout, task: Task, task_file: Path, claim_record: dict[str, Any]) -> dict[str, Any]:
    """What an agent needs to do the task (the task file's fields, the workspace made absolute)."""
    workspace = (layout.root / task.workspace).resolve()  # contract 1.0 tasks name it relative to the project
    return {
        "task_id": task.task_id,
        "plan_id": task.plan_id,
        "fork_id": task.fork_id,
        "kind": task.kind,
        "title": task.title,
        "instruction": task.instruction,
        "allowed_files": list(task.allowed_files),
        "constraints": list(task.constraints),
        "protected_patterns": list(task.protected_patterns),
        "max_diff_lines": task.max_diff_lines,
        "max_files_changed": task.max_files_changed,
        "attempt": task.attempt,
        "nonce": task.nonce,
        "verdict_file": task.verdict_file,
        "verification": ([c.model_dump(mode="json") for c in task.verification] if task.verification is not None
                         else verification_commands(layout, task)),  # contract 1.0 tasks carry none
        "timeout_seconds": task.timeout_seconds,
        "deadline": claim_record["deadline"],
        "confidence": task.confidence.model_dump(mode="json"),
        "depends_on": list(task.depends_on),
        "workspace": str(workspace),
        "task_file": str(task_file),
        "executor": claim_record["executor"],
    }


_POLICY_CACHE: dict[tuple[str, ...], tuple[tuple[int, ...], list[dict[str, Any]]]] = {}


def _stamp(*paths: Path) -> tuple[int, ...]:
    out: list[int] = []
    for path in paths:
        try:
            st = path.stat()
            out += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            out += [0, -1]
    return tuple(out)


def verification_commands(layout: ProjectLayout, task: Task) -> list[dict[str, Any]]:
    """The verification commands Conductor will run after the step, for a contract 1.0 task (a 2.0
    task carries them): the effective policy's (project, then the fork's plan level and the step's
    level of its plan document)."""
    if task.kind == "plan":
        return []  # planning changes no file; Conductor runs no command for it
    plan_file = layout.plan_file(task.plan_id, task.fork_id)
    key = (str(layout.root), task.plan_id, task.fork_id, task.task_id)
    stamp = _stamp(layout.policy_file, plan_file)
    cached = _POLICY_CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        project = load_policy_file(layout.policy_file, layout.policy_display)
        levels = [project] if project else []
        # no plan document (yet), or a variant's step: the project level alone
        with contextlib.suppress(FileNotFoundError, KeyError):
            levels += load_plan_levels(plan_file, layout.relative(plan_file), task.task_id)
        policy = merge(levels)
    except PolicyError:
        return []  # an invalid policy: Conductor refuses the step itself and says why
    commands = [{"name": c.name, "run": c.run, "timeout_seconds": c.timeout_seconds} for c in policy.commands]
    _POLICY_CACHE[key] = (stamp, commands)
    return commands


def _write_sidecar(path: Path, record: dict[str, Any]) -> None:
    """Readers see the whole claim record or none."""
    atomic_write_json(path, record)


def claim_next_task(layout: ProjectLayout, executor: str, plan_id: str | None = None,
                    fork_id: str | None = None) -> dict[str, Any] | None:
    """Claim the oldest pending task (atomic rename), record the claimer; ``None`` when none is ready."""
    executor = executor.strip()
    if not executor:
        raise QueueError("executor is empty: name yourself (for example `claude-code@myhost`)")
    plan_id, fork_id = check_filters(layout, plan_id, fork_id)
    for pid, fid in _forks(layout, plan_id, fork_id):
        _sweep_claims(layout, pid, fid)
    for pending in iter_pending(layout, plan_id, fork_id):
        claimed = claim(pending)
        if claimed is None:
            continue  # another agent won the rename
        try:
            data = read_regular(claimed, MAX_FILE_BYTES)
            body = json.loads(data)
            task = Task.model_validate(body)
            if task_checksum(body) != task.checksum:
                raise ValueError("the task checksum does not match its content")
        except (OSError, ValueError) as exc:
            _refuse_task(claimed, pending.task_id, executor, f"task file is invalid: {exc}")
            continue
        now = time.time()
        record = {
            "executor": executor,
            "claimed_at": utc_now(),
            "deadline": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + task.timeout_seconds)),
            "deadline_epoch": now + task.timeout_seconds,
            "task_digest": _digest(data),
            "via": "mcp",
        }
        _write_sidecar(claimed.parent / f"{task.task_id}{CLAIM_SUFFIX}", record)
        return describe_task(layout, task, claimed, record)
    return None


def queue_counts(layout: ProjectLayout, plan_id: str | None = None, fork_id: str | None = None) -> dict[str, int]:
    counts = dict.fromkeys(TASK_STATES, 0)
    for pid, fid in _forks(layout, plan_id, fork_id):
        for state in TASK_STATES:
            with contextlib.suppress(FileNotFoundError):
                counts[state] += sum(1 for n in os.listdir(layout.state_dir(pid, fid, state))
                                     if n.endswith(".task.json") and not n.startswith("."))
    return counts


# --------------------------------------------------------------------------- submit


def locate(layout: ProjectLayout, task_id: str, plan_id: str | None, fork_id: str | None) -> list[StepRef]:
    found = []
    for pid, fid in _forks(layout, plan_id, fork_id):
        for state in TASK_STATES:
            if (layout.state_dir(pid, fid, state) / f"{task_id}.task.json").exists():
                found.append(StepRef(pid, fid, task_id, state))
    return found


def _provenance(layout: ProjectLayout, ref: StepRef) -> dict[str, Any] | None:
    data = _read_json(layout.step_file(ref.plan_id, ref.fork_id, ref.state, ref.task_id, ".provenance.json"))
    return decode_predicate(data) if data is not None else None


def _not_in_progress(layout: ProjectLayout, task_id: str, refs: list[StepRef], scope: str) -> QueueError:
    if not refs:
        return QueueError(f"unknown task: no {task_id} in {layout.relative(layout.handoff_dir)}/{scope}; "
                          "use the task_id, plan_id and fork_id that next_task returned")
    parts = []
    for ref in refs[:6]:
        if ref.state == "pending":
            parts.append(f"{ref.where}: pending, not claimed (claim it with next_task first)")
        else:
            prov = _provenance(layout, ref) or {}
            codes = [v.get("code") for v in (prov.get("evidence") or {}).get("violations") or []]
            if ref.state == "failed" and ("evidence/timeout" in codes or "evidence/unclaimed" in codes):
                parts.append(f"{ref.where}: failed as a timeout, the result comes too late")
            else:
                verdict = prov.get("verdict", "unknown")
                parts.append(f"{ref.where}: already verified ({ref.state}, verdict {verdict}); a second result "
                             "is refused")
    return QueueError(f"{task_id} is not in progress, so no result can be submitted: " + "; ".join(parts))


def find_claimed(layout: ProjectLayout, task_id: str, plan_id: str | None, fork_id: str | None) -> StepRef:
    """The one in-progress step ``task_id`` names (refuses unknown, unclaimed, finished, ambiguous)."""
    plan_id, fork_id = check_filters(layout, plan_id, fork_id)
    refs = locate(layout, task_id, plan_id, fork_id)
    scope = (f"plan_{plan_id}/" if plan_id else "") + (f"fork_{fork_id}/" if fork_id else "")
    active = [r for r in refs if r.state == "in_progress"]
    if not active:
        raise _not_in_progress(layout, task_id, refs, scope)
    if len(active) > 1:
        raise QueueError(f"{task_id} is in progress in several forks ({', '.join(r.where for r in active)}); "
                         "pass plan_id and fork_id")
    return active[0]


def check_claim(layout: ProjectLayout, ref: StepRef, executor: str, now: float | None = None) -> dict[str, Any]:
    """The claim record of ``ref`` if ``executor`` may submit for it now."""
    folder = layout.state_dir(ref.plan_id, ref.fork_id, "in_progress")
    record = read_claim(layout, ref)
    try:
        task_digest = _digest(read_regular(folder / f"{ref.task_id}.task.json", MAX_FILE_BYTES))
    except OSError as exc:
        raise QueueError(f"{ref.task_id} ({ref.where}) left in_progress/ while the result was being "
                         "submitted (verified or timed out); call status") from exc
    if record is None or record.get("task_digest") != task_digest:
        raise QueueError(f"{ref.task_id} ({ref.where}) was not claimed through next_task (it was taken through "
                         "the file protocol); the agent that claimed it writes its result file")
    if record.get("executor") != executor:
        raise QueueError(f"{ref.task_id} ({ref.where}) is claimed by {record.get('executor')!r}, not by "
                         f"{executor!r}; only the claimer may submit its result")
    if (folder / f"{ref.task_id}.result.json").exists():
        raise QueueError(f"a result for {ref.task_id} ({ref.where}) was already submitted and is waiting for "
                         "verification; a second submit is refused")
    deadline = float(record.get("deadline_epoch") or parse_ts(str(record["claimed_at"])))
    if (now if now is not None else time.time()) > deadline:
        raise QueueError(f"{ref.task_id} ({ref.where}) timed out: its deadline {record.get('deadline')} has "
                         "passed; Conductor fails it as a timeout and the result is refused")
    return record


def build_result(task: Task, args: dict[str, Any], executor: str, started_at: str | None) -> bytes:
    """The result file's bytes, validated exactly as Conductor will read them."""
    plan = args.get("plan")
    status = args["status"]
    if task.kind == "plan" and status == "completed":
        if not isinstance(plan, dict):
            raise QueueError(f"{task.task_id} is a planning task (kind plan): a completed result needs `plan`, "
                             "a plan document (goal, strategy, summary, steps)")
        _doc, diags = validate_document(json.dumps(plan, indent=2), "plan", path="plan")
        errors = [d for d in diags if d.severity == Severity.ERROR]
        if errors:
            detail = "; ".join(f"{d.code} at line {d.range.start_line + 1} of the plan: {d.message}"
                               for d in errors[:5])
            raise QueueError(f"`plan` is not a valid plan document (plan.schema.json): {detail}")
    elif plan is not None and task.kind != "plan":
        raise QueueError(f"`plan` is only for planning tasks; {task.task_id} is a step (kind step)")
    result = Result.answering(task, task_id=task.task_id, status=status,
                    files_changed=list(args.get("files_changed") or []), summary=args.get("summary", ""),
                    error=args.get("error"), executor=executor, started_at=started_at, finished_at=utc_now(),
                    plan=plan if task.kind == "plan" else None)
    text = result.model_dump_json(indent=2, exclude_none=True) + "\n"
    _doc, diags = validate_document(text, "result", path=f"{task.task_id}.result.json")
    errors = [d for d in diags if d.severity == Severity.ERROR]
    if errors:
        raise QueueError("the result would be invalid: " + "; ".join(f"{d.code}: {d.message}" for d in errors[:5]))
    return text.encode("utf-8")


@dataclass(frozen=True)
class Submitted:
    ref: StepRef
    result_digest: str
    kind: str


def submit(layout: ProjectLayout, args: dict[str, Any]) -> Submitted:
    """Check the call, then write the explanation and the result into ``in_progress/``."""
    executor = str(args["executor"]).strip()
    if not executor:
        raise QueueError("executor is empty: use the name you gave next_task")
    ref = find_claimed(layout, str(args["task_id"]), args.get("plan_id"), args.get("fork_id"))
    record = check_claim(layout, ref, executor)
    folder = layout.state_dir(ref.plan_id, ref.fork_id, "in_progress")
    try:
        task = Task.model_validate(json.loads(read_regular(folder / f"{ref.task_id}.task.json", MAX_FILE_BYTES)))
    except (OSError, ValueError) as exc:
        raise QueueError(f"{ref.task_id} ({ref.where}): its task file cannot be read ({exc})") from exc
    data = build_result(task, args, executor, record.get("claimed_at"))
    result_path = folder / f"{ref.task_id}.result.json"
    explanation = str(args.get("explanation") or "").rstrip() + "\n"
    atomic_write_text(folder / f"{ref.task_id}.explanation.md", explanation)
    try:
        atomic_write_bytes(result_path, data, exclusive=True)  # of two submits, one wins
    except FileExistsError as exc:
        raise QueueError(f"a result for {ref.task_id} ({ref.where}) was already submitted and is waiting for "
                         "verification; a second submit is refused") from exc
    except FileNotFoundError as exc:
        raise QueueError(f"{ref.task_id} ({ref.where}) left in_progress/ before the result was written "
                         "(timed out?); call status") from exc
    return Submitted(ref, _digest(data), task.kind)


# --------------------------------------------------------------------------- verdict


def find_verdict(layout: ProjectLayout, sub: Submitted) -> tuple[Path, dict[str, Any]] | None:
    """The provenance record Conductor wrote for exactly the submitted result bytes, if any yet."""
    fork_dir = layout.fork_dir(sub.ref.plan_id, sub.ref.fork_id)
    name = f"{sub.ref.task_id}.provenance.json"
    candidates = [fork_dir / "completed" / name, fork_dir / "failed" / name]
    attempts = fork_dir / "failed" / "attempts"
    if attempts.is_dir():  # a repaired attempt may already have archived this one
        candidates.extend(sorted(attempts.glob(f"*/{name}"), reverse=True))
    for path in candidates:
        data = _read_json(path)
        data = decode_predicate(data) if data is not None else None
        if data is not None and data.get("result_digest") == sub.result_digest:
            return path, data
    return None


def _primary_code(violations: list[dict[str, Any]]) -> str | None:
    """The code Conductor names the failure by (its priority order, as in the coordinator)."""
    try:
        first = primary([Violation.model_validate(v) for v in violations])
    except ValueError:
        return violations[0].get("code") if violations else None
    return first.code if first is not None else None


def verdict_payload(layout: ProjectLayout, sub: Submitted, path: Path, prov: dict[str, Any]) -> dict[str, Any]:
    evidence = prov.get("evidence") or {}
    ok = prov.get("verdict") == "pass"
    violations = evidence.get("violations") or []
    if ok:
        nxt = "Verified. Call next_task for the next step."
    else:
        nxt = ("Not accepted. Read the violations and verification output; Conductor may hand out a repaired task "
               "for this step (call next_task), or see `explain` for what to do.")
    return {
        "task_id": sub.ref.task_id,
        "plan_id": sub.ref.plan_id,
        "fork_id": sub.ref.fork_id,
        "verdict": prov.get("verdict"),
        "state": "completed" if ok else "failed",
        "reason": prov.get("reason"),
        "reason_code": _primary_code(violations) if not ok else None,
        "files_changed": {k: evidence.get(k, []) for k in ("created", "modified", "deleted")},
        "diff_lines": evidence.get("diff_lines"),
        "unreported_changes": evidence.get("unreported_changes", []),
        "checksum_ok": evidence.get("checksum_ok"),
        "violations": violations,
        "verification": evidence.get("verification", []),
        "executor": prov.get("executor"),
        "provenance": layout.relative(path),
        "next": nxt,
    }


def release_claim(layout: ProjectLayout, sub: Submitted) -> None:
    path = layout.state_dir(sub.ref.plan_id, sub.ref.fork_id, "in_progress") / f"{sub.ref.task_id}{CLAIM_SUFFIX}"
    if not (path.parent / f"{sub.ref.task_id}.task.json").exists():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
