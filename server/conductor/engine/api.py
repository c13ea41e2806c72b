"""The engine facade: every operation a person can ask for, as plain functions.

The CLI, the language server and the MCP server call these and only format the results;
none of them holds business logic. Results are JSON-serializable dictionaries so each
adapter can print them, return them over a protocol, or render them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conductor.engine.lock import PlanLocked, describe, plan_holder
from conductor.project.init import init_project as _init_project
from conductor.project.layout import ProjectLayout, find_project_root

__all__ = ["EngineError", "PlanLocked", "find_project_root", "project_root"]
from conductor.validation import detect_kind, validate_file

SKIP_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".ruff_cache", "worktrees"}
)


class EngineError(Exception):
    """A request the engine cannot carry out; the message says what and where."""


class DiskFull(EngineError):
    """The disk (or quota) filled up; the message names the path. Nothing was left half-written."""


def _disk_full(exc: OSError, then: str | None = None) -> DiskFull | None:
    """One line naming the path and the space; ``then`` replaces the advice to resume."""
    from conductor.storage.errors import DiskFull as StorageFull
    from conductor.storage.errors import is_disk_full

    if not is_disk_full(exc):
        return None
    text = str(exc if isinstance(exc, StorageFull) else StorageFull(exc.filename or ".", code=exc.errno or 0))
    if then is not None:
        text = text.split(": free some space", 1)[0] + f": free some space, then {then}"
    return DiskFull(text)


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    root = find_project_root(start)
    if root is None:
        where = Path(start or Path.cwd()).resolve()
        raise EngineError(f"{where}: not inside a Conductor project (no .conductor folder); run `conductor init .`")
    return root


def init_project(path: str | os.PathLike[str] = ".", name: str | None = None) -> dict[str, Any]:
    try:
        return _init_project(Path(path), name).to_json()
    except OSError as exc:
        full = _disk_full(exc, "run `conductor init` again")
        if full is None:
            raise
        raise full from exc


def conductor_files(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, bool]]:
    """Files to validate under ``paths``: (path, named explicitly)."""
    found: list[tuple[Path, bool]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
                for name in sorted(filenames):
                    candidate = Path(dirpath) / name
                    if detect_kind(candidate) is not None:
                        found.append((candidate, False))
        else:
            found.append((p, True))
    return found


def validate_paths(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Validate every Conductor document under ``paths``.

    Returns one entry per file: ``{"path", "kind", "diagnostics": [...], "error"?}``.
    """
    out: list[dict[str, Any]] = []
    for path, explicit in conductor_files(paths):
        kind = detect_kind(path)
        entry: dict[str, Any] = {"path": str(path), "kind": kind, "diagnostics": []}
        if not path.exists():
            entry["error"] = "no such file or folder"
        elif kind is None:
            entry["error"] = "not a Conductor document (policy, config, plan, task, result, provenance)"
        else:
            try:
                entry["diagnostics"] = [d.to_json() for d in validate_file(path, kind)]
            except OSError as exc:
                entry["error"] = f"cannot read: {exc.strerror}"
        if explicit or entry["diagnostics"] or "error" in entry or kind is not None:
            out.append(entry)
    return out


def format_diagnostic(path: str, diag: dict[str, Any]) -> str:
    start = diag["range"]["start"]
    return f"{path}:{start['line'] + 1}:{start['character'] + 1}: {diag['severity']} {diag['code']} {diag['message']}"


def effective_policy(
    root: str | os.PathLike[str] | None = None,
    *,
    plan_id: str | None = None,
    step_id: str | None = None,
    show_origin: bool = True,
) -> dict[str, Any]:
    """The effective policy (project, or with a plan's and a step's levels merged over it)."""
    from conductor.policy import merge
    from conductor.policy.levels import PolicyLevel, load_policy_file

    layout = ProjectLayout.at(project_root(root))
    levels: list[PolicyLevel] = []
    project = load_policy_file(layout.policy_file, display=".conductor/policy.yaml")
    if project:
        levels.append(project)
    if plan_id:
        levels.extend(plan_policy_levels(layout, plan_id, step_id))
    return merge(levels).to_json(show_origin=show_origin)


def plan_policy_levels(layout: ProjectLayout, plan_id: str, step_id: str | None) -> list[Any]:
    """The plan level and (optionally) one step's level of a stored plan document."""
    from conductor.policy import PolicyError
    from conductor.policy.levels import PolicyLevel
    from conductor.validation import validate_document

    path = layout.plan_file(plan_id)
    if not path.exists():
        raise EngineError(f"{path}: no plan {plan_id!r}")
    display = path.relative_to(layout.root).as_posix()
    doc, diagnostics = validate_document(path.read_text(encoding="utf-8"), "plan", path=path)
    if not doc.ok:
        raise PolicyError(display, [d for d in diagnostics if d.severity == 1])
    levels = []
    if doc.data.get("policy"):
        levels.append(PolicyLevel.from_document(doc, "plan", display, ("policy",)))
    if step_id:
        for i, step in enumerate(doc.data["steps"]):
            if step["id"] == step_id:
                if step.get("policy"):
                    levels.append(PolicyLevel.from_document(doc, "step", display, ("steps", i, "policy")))
                break
        else:
            raise EngineError(f"{display}: plan has no step {step_id!r}")
    return levels


# --------------------------------------------------------------------------- plans


def _layout(root: str | os.PathLike[str] | None) -> ProjectLayout:
    return ProjectLayout.at(project_root(root))


def plan_ids(layout: ProjectLayout) -> list[str]:
    """Plans of the project, oldest first (by journal creation time)."""
    if not layout.plans_dir.is_dir():
        return []
    found = [p for p in layout.plans_dir.iterdir() if (p / "journal.jsonl").exists()]
    return [p.name for p in sorted(found, key=lambda p: ((p / "journal.jsonl").stat().st_mtime_ns, p.name))]


def resolve_plan(layout: ProjectLayout, plan_id: str | None) -> str:
    """``plan_id`` if it exists, or the latest plan when None."""
    ids = plan_ids(layout)
    if plan_id is None:
        if not ids:
            raise EngineError(f"{layout.plans_dir}: no plans yet; start one with `conductor build \"<goal>\"`")
        return ids[-1]
    plan_id = plan_id.removeprefix("plan_")
    if plan_id not in ids:
        matches = [i for i in ids if i.startswith(plan_id)]
        if len(matches) == 1:
            return matches[0]
        raise EngineError(f"no plan {plan_id!r} in {layout.plans_dir}" + (f" (known: {', '.join(ids)})" if ids else ""))
    return plan_id


def plan_state(root: str | os.PathLike[str] | None, plan_id: str | None = None, to_seq: int | None = None) -> Any:
    from conductor.journal.journal import Journal
    from conductor.journal.projection import replay

    layout = _layout(root)
    pid = resolve_plan(layout, plan_id)
    return replay(Journal.for_plan(layout, pid), to_seq)


def status(root: str | os.PathLike[str] | None = None, plan_id: str | None = None) -> dict[str, Any]:
    """Plans → forks → steps with their state, confidence and files (``conductor status``)."""
    from conductor.engine.runner import step_payload
    from conductor.journal.journal import Journal
    from conductor.journal.projection import replay

    layout = _layout(root)
    ids = [resolve_plan(layout, plan_id)] if plan_id else plan_ids(layout)
    plans = []
    for pid in ids:
        journal = Journal.for_plan(layout, pid)
        state = replay(journal)
        forks = []
        for fork_id, fork in state.forks.items():
            steps = []
            for step in fork.steps.values():
                payload = step_payload(layout, pid, step)
                payload.pop("plan_id")
                payload.pop("fork_id")
                payload["requested_loosening"] = requested_loosening(step.policy)
                steps.append(payload)
            forks.append({"fork_id": fork_id, "strategy": fork.strategy, "status": fork.status, "score": fork.score,
                          "branch": fork.branch, "steps": steps})
        holder = plan_holder(layout, pid)
        plans.append({"plan_id": pid, "goal": state.goal, "mode": state.mode, "state": state.status,
                      "outcome": state.outcome, "halted_reason": state.halted_reason, "merged": state.merged,
                      "counts": state.counts(), "tokens": state.tokens.total_tokens,
                      "policy_changed": policy_drift(layout, journal) if state.status != "finished" else None,
                      "forks": forks, "held_by": None if holder is None else {**holder, "text": describe(holder)}})
    return {"plans": plans}


def requested_loosening(policy: dict[str, Any] | None) -> list[str]:
    """What an agent-written plan asked to loosen for a step (held until a person approves), one line each."""
    out = []
    for request in (policy or {}).get("requested_loosening") or []:
        origin = request.get("origin") or {}
        where = origin.get("file") or origin.get("level") or ""
        if where and origin.get("line"):
            where = f"{where}:{origin['line']}"
        out.append(f"{request.get('message')}" + (f" ({where})" if where else ""))
    return out


def policy_drift(layout: ProjectLayout, journal: Any) -> str | None:
    """Why ``.conductor/policy.yaml`` no longer is the policy the plan pinned when it started, or ``None``."""
    import hashlib

    pin = next((event.data.get("policy_pin") for event in journal.events(types="plan.created")), None)
    if not isinstance(pin, dict) or not pin.get("sha256"):
        return None
    path = layout.policy_file
    try:  # hashed as the runner pinned it: the text read as UTF-8, encoded again
        current = path.read_text(encoding="utf-8") if os.path.lexists(path) and path.is_file() else ""
    except (OSError, UnicodeDecodeError):
        current = None
    if current is not None and hashlib.sha256(current.encode("utf-8")).hexdigest() == pin["sha256"]:
        return None
    return (".conductor/policy.yaml changed since this plan started; the plan keeps running under the policy "
            "pinned when it started (a new plan uses the new one)")


def explain_step(root: str | os.PathLike[str] | None, step_id: str, plan_id: str | None = None,
                 fork_id: str | None = None) -> dict[str, Any]:
    """Why a step was planned, its confidence factors, what happened, the evidence, what to do."""
    from conductor.journal.explain import explain_step as build

    state = plan_state(root, plan_id)
    if state.find_step(step_id, fork_id) is None:
        raise EngineError(f"plan {state.plan_id} has no step {step_id!r}" + (f" in fork {fork_id}" if fork_id else ""))
    explanation = build(state, step_id, fork_id)
    return {"plan_id": state.plan_id, **explanation.data, "markdown": explanation.markdown}


def list_events(root: str | os.PathLike[str] | None = None, plan_id: str | None = None, *,
                types: list[str] | None = None, fork_id: str | None = None, step_id: str | None = None,
                all_plans: bool = False) -> list[dict[str, Any]]:
    from conductor.journal.journal import Journal

    layout = _layout(root)
    ids = plan_ids(layout) if all_plans else [resolve_plan(layout, plan_id)]
    out = []
    for pid in ids:
        for event in Journal.for_plan(layout, pid).events(types=types or None, fork_id=fork_id, step_id=step_id):
            out.append(event.model_dump(mode="json"))
    return out


def approve_step(root: str | os.PathLike[str] | None, step_id: str, plan_id: str | None = None,
                 fork_id: str | None = None, decision: str = "approve", by: str | None = None) -> dict[str, Any]:
    """Record a person's approval (or rejection) of a step waiting at LOW confidence."""
    from conductor.journal.journal import Journal

    layout = _layout(root)
    pid = resolve_plan(layout, plan_id)
    state = plan_state(root, pid)
    candidates = [f for f in state.forks.values() if step_id in f.steps and (fork_id is None or f.fork_id == fork_id)]
    waiting = [f for f in candidates if f.steps[step_id].state == "waiting_approval"]
    if not candidates:
        raise EngineError(f"plan {pid} has no step {step_id!r}")
    if not waiting:
        states = ", ".join(f"{f.fork_id}: {f.steps[step_id].state}" for f in candidates)
        raise EngineError(f"{step_id} is not waiting for approval ({states})")
    if decision not in ("approve", "reject"):
        raise EngineError(f"decision must be approve or reject, not {decision!r}")
    who = by or os.environ.get("USER") or "user"
    journal = Journal.for_plan(layout, pid)
    kind = "step.approved" if decision == "approve" else "step.rejected"
    for fork in waiting:
        journal.append(kind, fork_id=fork.fork_id, step_id=step_id, by=who)
    return {"plan_id": pid, "step_id": step_id, "forks": [f.fork_id for f in waiting], "decision": decision, "by": who}


def replay_plan(root: str | os.PathLike[str] | None, plan_id: str | None = None,
                to_seq: int | None = None, rerun_planning: bool = False) -> dict[str, Any]:
    """The full state of a plan as it was at event ``to_seq`` (inclusive).

    With ``rerun_planning`` every fork planned by the model is planned again from the
    journaled inputs, answered by the journaled replies (no network), and compared with the
    plan that was recorded.
    """
    from conductor.journal.journal import Journal

    layout = _layout(root)
    pid = resolve_plan(layout, plan_id)
    journal = Journal.for_plan(layout, pid)
    broken = journal.verify()
    state = plan_state(root, pid, to_seq)
    out: dict[str, Any] = {"plan_id": pid, "to_seq": to_seq if to_seq is not None else state.last_seq,
                           "journal_ok": broken is None, "journal_break": str(broken) if broken else None,
                           "state": state.to_dict()}
    if rerun_planning:
        out["replanned"] = rerun_plans(journal, state.goal, to_seq)
    return out


def rerun_plans(journal: Any, goal: str, to_seq: int | None = None) -> list[dict[str, Any]]:
    """Plan each llm-planned fork again with :class:`ReplayLLM`; report whether it matches."""
    import asyncio

    from conductor.engine.planning import PlanningError, Strategy, plan_with_llm
    from conductor.llm import LLMError, ReplayLLM

    replay_llm = ReplayLLM.from_events(journal.events())
    results = []
    for event in journal.events(types="plan.planned", to_seq=to_seq):
        inputs = event.data.get("inputs") or {}
        fork_id = event.data["fork_id"]
        if inputs.get("planner") != "llm":
            results.append({"fork_id": fork_id, "replanned": False, "why": "planned by a handoff task, not a model"})
            continue
        strategy = Strategy(event.data["strategy"], inputs.get("summary", ""))
        try:
            plan = asyncio.run(plan_with_llm(replay_llm, goal, strategy, list(inputs.get("files") or []),
                                             constraints=list(inputs.get("constraints") or [])))
        except (LLMError, PlanningError) as exc:
            results.append({"fork_id": fork_id, "replanned": False, "why": str(exc)})
            continue
        same = plan.model_dump(mode="json", exclude_none=True) == event.data["plan"]
        results.append({"fork_id": fork_id, "replanned": True, "identical": same, "steps": len(plan.steps)})
    return results


async def run_goal(root: str | os.PathLike[str] | None, goal: str, *, forks: int = 1, mode: str | None = None,
                   merge: bool = True, cancel: Any = None, on_progress: Any = None, on_step: Any = None,
                   on_approval: Any = None, plan_id: str | None = None, llm: Any = None,
                   on_plan: Any = None) -> dict[str, Any]:
    """Plan ``goal`` into ``forks`` strategies and run them (``build`` is one fork)."""
    from conductor.engine.runner import PlanRunner, RunOptions, new_plan_id

    if not goal.strip():
        raise EngineError("the goal is empty; say what you want done")
    layout = _layout(root)
    pid = plan_id or new_plan_id()
    options = RunOptions(goal=goal, forks=forks, mode=mode, merge=merge, on_progress=on_progress, on_step=on_step,
                         on_approval=on_approval)
    try:
        runner = PlanRunner(layout, pid, options, cancel=cancel, llm=llm)
        if on_plan is not None:
            on_plan(pid)
        return (await runner.run()).to_json()
    except OSError as exc:
        full = _disk_full(exc)
        if full is None:
            raise
        raise full from exc


async def resume(root: str | os.PathLike[str] | None, plan_id: str | None = None, *, cancel: Any = None,
                 on_progress: Any = None, on_step: Any = None, on_approval: Any = None,
                 llm: Any = None) -> dict[str, Any]:
    """Continue a halted or crashed plan from its journal."""
    from conductor.engine.runner import PlanRunner, RunOptions

    layout = _layout(root)
    pid = resolve_plan(layout, plan_id)
    options = RunOptions(on_progress=on_progress, on_step=on_step, on_approval=on_approval)
    try:
        runner = PlanRunner(layout, pid, options, cancel=cancel, llm=llm)
        return (await runner.resume()).to_json()
    except OSError as exc:
        full = _disk_full(exc)
        if full is None:
            raise
        raise full from exc


# --------------------------------------------------------------------------- evidence


def handoff_metrics(root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Counts, success rate and latency percentiles per fork, derived from the audit logs."""
    from conductor.handoff.metrics import derive_metrics

    return derive_metrics(_layout(root))


def verify_project(root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Every provenance signature and chain, audit log and journal of the project.

    ``problems`` name the first broken link of each chain (``file``, ``line`` or ``step``).
    """
    from conductor.provenance.verify import verify_project as verify

    return verify(_layout(root)).to_json()
