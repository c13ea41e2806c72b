"""A scripted stand-in for ``conductor.engine.api`` (selected with CONDUCTOR_ENGINE_MODULE).

It has the facade's function names and signatures, records every call in FAKE_ENGINE_LOG,
and behaves predictably: ``run_goal`` reports progress in steps (slowly when the goal says
"slow", so a test can cancel it), ``approve_step`` journals the decision like the engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any


def _log(name: str, **kwargs: Any) -> None:
    target = os.environ.get("FAKE_ENGINE_LOG")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"call": name, **{k: str(v) for k, v in kwargs.items()}}) + "\n")


def _journal(root: Path, plan_id: str, event: str, **data: Any) -> None:
    folder = Path(root) / ".conductor" / "plans" / plan_id
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "journal.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"seq": 0, "type": event, "plan_id": plan_id, "data": data}) + "\n")


async def run_goal(root: Any, goal: str, mode: str = "build", forks: int = 1, progress: Any = None,
                   cancel: asyncio.Event | None = None, plan_id: str | None = None) -> dict[str, Any]:
    _log("run_goal", goal=goal, mode=mode, forks=forks, plan_id=plan_id)
    steps = 50 if "slow" in goal else 4
    for i in range(steps):
        if cancel is not None and cancel.is_set():
            _log("cancelled", plan_id=plan_id)
            return {"plan_id": plan_id, "outcome": "cancelled"}
        if progress:
            progress(f"step {i + 1} of {steps}", int((i + 1) * 100 / steps))
        await asyncio.sleep(0.1)
    return {"plan_id": plan_id, "outcome": "completed", "mode": mode, "forks": forks}


async def resume(root: Any, plan_id: str | None = None, progress: Any = None,
                 cancel: asyncio.Event | None = None) -> dict[str, Any]:
    _log("resume", plan_id=plan_id)
    if progress:
        progress("resuming", 50)
    return {"plan_id": plan_id, "outcome": "completed"}


def approve_step(root: Any, step_id: str, plan_id: str | None = None, decision: str = "approve",
                 fork_id: str | None = None) -> dict[str, Any]:
    _log("approve_step", step_id=step_id, plan_id=plan_id, decision=decision)
    _journal(Path(root), plan_id or "p1", "step.approved" if decision == "approve" else "step.rejected",
             fork_id=fork_id or "main", step_id=step_id, by="editor")
    return {"step_id": step_id, "plan_id": plan_id, "decision": decision}


def explain_step(root: Any, step_id: str, plan_id: str | None = None) -> dict[str, Any]:
    _log("explain_step", step_id=step_id, plan_id=plan_id)
    return {"step_id": step_id, "plan_id": plan_id, "markdown": f"### EXPLAINED {step_id}\n\nfrom the engine"}


def status(root: Any) -> dict[str, Any]:
    if (Path(root) / "RAISE").exists():
        raise RuntimeError("scripted failure")
    return {"plans": [{"plan_id": "p1", "state": "running"}]}


def list_events(root: Any, plan_id: str | None = None, type: str | None = None,  # noqa: A002
                step_id: str | None = None) -> list[dict[str, Any]]:
    _log("list_events", plan_id=plan_id, type=type, step_id=step_id)
    return [{"seq": 0, "type": type or "plan.created", "plan_id": plan_id or "p1"}]


def handoff_metrics(root: Any) -> dict[str, Any]:
    return {"handed_off": 1, "completed": 0}


def verify_project(root: Any) -> dict[str, Any]:
    return {"ok": True, "checked": 0}


def init_project(path: Any) -> dict[str, Any]:
    target = Path(path)
    (target / ".conductor").mkdir(parents=True, exist_ok=True)
    _log("init_project", path=path)
    return {"root": str(target), "created": [".conductor/policy.yaml"], "at": time.time() > 0}
