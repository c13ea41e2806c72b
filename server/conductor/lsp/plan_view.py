"""``conductor/plans``: what the editor shows of each plan, computed here, never in the client.

The editor's tree, status bar and waiting notification need more than a step's bare state:
whether a step waits for an *agent* (its task file sits in ``pending/``) or for a person's
*approval*, since when, which step of a plan is the one to act on, and whether a planning
task is what runs. This module assembles that from the engine's status (the journal
projection) and the step tracker's view of the handoff files (which also knows the planning
task ``step_000``, which the journal does not list), and adds the project's readiness (mode,
whether an API key is present) so the client can say what is missing before a build.

The added fields (``kind``, ``strategy``, ``waiting_for``, ``since`` per step; ``waiting`` and
``display_state`` per plan) are the smallest addition at the LSP boundary; they belong in
``engine.api``'s status once it carries them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor.engine import api
from conductor.project.layout import CONDUCTOR_DIR
from conductor.validation import validate_document

if TYPE_CHECKING:
    from conductor.lsp.server import ConductorServer

PLANS_REQUEST = "conductor/plans"
DONE = ("completed", "skipped", "failed")


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _mtime(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return _iso(os.lstat(path).st_mtime)
    except OSError:
        return None


def _in_folder(path: str | None, folder: str) -> bool:
    return bool(path) and Path(str(path)).parent.name == folder


def _strategy(step: dict[str, Any], fork_strategy: str) -> str:
    if fork_strategy:
        return fork_strategy
    title = str(step.get("title") or "")
    return title.split(":", 1)[1].strip() if title.startswith("Plan:") else "default"


def decorate_step(step: dict[str, Any], fork_strategy: str, approval_since: str | None) -> dict[str, Any]:
    """One step as the editor shows it: title, kind, and what (and since when) it waits for."""
    out = dict(step)
    paths = out.get("paths") if isinstance(out.get("paths"), dict) else {}
    task = paths.get("task") if isinstance(paths, dict) else None
    planning = out.get("step_id") == "step_000" or out.get("kind") == "plan"
    out["kind"] = "plan" if planning else "step"
    if planning:
        out["strategy"] = _strategy(out, fork_strategy)
        out["title"] = f"Planning (strategy: {out['strategy']})"
    state = str(out.get("state") or "pending")
    waiting_for = None
    since = None
    if state == "waiting_approval":
        waiting_for, since = "approval", approval_since
    elif state not in DONE and _in_folder(task, "pending"):
        waiting_for, since = "agent", _mtime(task)
        out["state"] = "in_progress" if state == "pending" else state
    elif state not in DONE and _in_folder(task, "in_progress"):
        out["state"] = "in_progress"
    out["waiting_for"] = waiting_for
    out["since"] = since
    return out


def _display_state(plan: dict[str, Any], waiting: dict[str, Any] | None) -> str:
    state = plan.get("state")
    if state == "finished":
        return "done" if plan.get("outcome") == "completed" else "failed"
    if state == "halted":
        return "halted"
    if waiting is not None:
        return f"waiting_for_{waiting['waiting_for']}"
    return "running" if state == "running" else str(state or "pending")


def _approval_times(root: Path, plan_id: str) -> dict[tuple[str, str], str]:
    """When each step began to wait for approval (the journal's ``step.waiting_approval``)."""
    try:
        state = api.plan_state(root, plan_id)
    except Exception:
        return {}
    out: dict[tuple[str, str], str] = {}
    for fork_id, fork in state.forks.items():
        for step_id, step in fork.steps.items():
            for entry in step.timeline:
                if entry.get("type") == "step.waiting_approval" and entry.get("ts"):
                    out[(fork_id, step_id)] = str(entry["ts"])
    return out


def project_plans(root: Path, tracked: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plans of the project at ``root``: the engine's status, completed by the tracked steps."""
    try:
        status = api.status(root)
    except Exception:
        status = {"plans": []}
    by_plan: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for step in tracked:
        by_plan.setdefault(step["plan_id"], {}).setdefault(step["fork_id"], {})[step["step_id"]] = step
    plans = []
    known = {p.get("plan_id") for p in status.get("plans", [])}
    entries = list(status.get("plans", [])) + [
        {"plan_id": pid, "goal": pid, "state": "running", "forks": []} for pid in sorted(by_plan) if pid not in known]
    for plan in entries:
        pid = str(plan.get("plan_id"))
        approvals = _approval_times(root, pid)
        files = by_plan.get(pid, {})
        forks_out = []
        fork_ids = [f.get("fork_id") for f in plan.get("forks") or []]
        fork_ids += [f for f in sorted(files) if f not in fork_ids]
        engine_forks = {f.get("fork_id"): f for f in plan.get("forks") or []}
        for fork_id in fork_ids:
            fork = engine_forks.get(fork_id, {})
            steps: dict[str, dict[str, Any]] = {}
            for step in files.get(fork_id, {}).values():
                steps[step["step_id"]] = {k: v for k, v in step.items() if k not in ("plan_id", "fork_id")}
            for step in fork.get("steps") or []:
                merged = {**steps.get(step["step_id"], {}), **{k: v for k, v in step.items() if v is not None}}
                if step.get("paths") and steps.get(step["step_id"], {}).get("paths"):
                    merged["paths"] = {k: v or steps[step["step_id"]]["paths"].get(k)
                                       for k, v in step["paths"].items()}
                steps[step["step_id"]] = merged
            strategy = str(fork.get("strategy") or "")
            if "step_000" in steps and plan.get("state") != "running" and steps["step_000"].get("state") == "pending":
                # a planning task left in pending/ by a halted or finished plan is not waiting for anyone
                steps["step_000"]["state"] = "halted"
            decorated = [decorate_step(s, strategy, approvals.get((str(fork_id), sid)))
                         for sid, s in sorted(steps.items())]
            if plan.get("state") in ("halted", "finished"):
                for s in decorated:
                    s["waiting_for"] = None
            forks_out.append({"fork_id": fork_id, "strategy": strategy, "status": fork.get("status"),
                              "steps": decorated})
        waiting = None
        for wanted in ("approval", "agent"):
            for fork in forks_out:
                for s in fork["steps"]:
                    if waiting is None and s.get("waiting_for") == wanted:
                        waiting = {"waiting_for": wanted, "fork_id": fork["fork_id"], "step_id": s["step_id"],
                                   "title": s.get("title"), "since": s.get("since"),
                                   "task": (s.get("paths") or {}).get("task")}
        out = {k: plan.get(k) for k in ("plan_id", "goal", "mode", "state", "outcome", "halted_reason", "merged")}
        out["forks"] = forks_out
        out["waiting"] = waiting
        out["display_state"] = _display_state(out, waiting)
        plans.append(out)
    return plans


def readiness(root: Path, mode_setting: str | None) -> dict[str, Any]:
    """The project's mode and whether the model's API key is present (never the key itself)."""
    data: dict[str, Any] = {}
    config = root / CONDUCTOR_DIR / "config.yaml"
    try:
        if config.is_file() and config.stat().st_size < 1 << 20:
            doc, _ = validate_document(config.read_text(encoding="utf-8"), "config", path=config)
            data = doc.data if isinstance(doc.data, dict) else {}
    except (OSError, UnicodeDecodeError):
        data = {}
    llm_section = data.get("llm")
    llm: dict[str, Any] = llm_section if isinstance(llm_section, dict) else {}
    key_env = str(llm.get("api_key_env") or "GEMINI_API_KEY")
    mode = mode_setting or (data.get("mode") if data.get("mode") in ("handoff", "llm") else "handoff")
    has_key = bool(os.environ.get(key_env) or os.environ.get("CONDUCTOR_API_KEY"))
    return {"root": str(root), "mode": mode, "api_key_env": key_env, "api_key_set": has_key}


def plans_view(ls: ConductorServer) -> dict[str, Any]:
    """The ``conductor/plans`` answer: every plan of every project folder, plus readiness."""
    tracked = [info.payload() for info in ls.steps.scan_all().values()]
    projects = []
    plans: list[dict[str, Any]] = []
    for root in ls.project_roots():
        mine = [s for s in tracked if _under(s, root)]
        plans.extend(project_plans(root, mine))
        projects.append(readiness(root, ls.settings.mode))
    return {"plans": plans, "projects": projects}


def _under(step: dict[str, Any], root: Path) -> bool:
    paths = step.get("paths") or {}
    task = paths.get("task") if isinstance(paths, dict) else None
    if not task:
        return True
    try:
        Path(task).relative_to(root)
        return True
    except ValueError:
        return False
