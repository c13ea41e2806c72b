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


def _decision(root: Path, plan_id: str, step_id: str) -> str | None:
    path = Path(root) / ".conductor" / "plans" / plan_id / "journal.jsonl"
    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["data"].get("step_id") == step_id and event["type"] in ("step.approved", "step.rejected"):
            return "approved" if event["type"] == "step.approved" else "rejected"
    return None


async def run_goal(root: Any, goal: str, *, forks: int = 1, mode: str | None = None, merge: bool = True,
                   cancel: asyncio.Event | None = None, on_progress: Any = None, on_step: Any = None,
                   on_approval: Any = None, plan_id: str | None = None, llm: Any = None,
                   on_plan: Any = None) -> dict[str, Any]:
    _log("run_goal", goal=goal, mode=mode, forks=forks, plan_id=plan_id)
    pid = plan_id or "fake0001"
    if on_plan:
        on_plan(pid)
    if "approval" in goal:
        confidence = {"score": 0.3, "level": "low", "factors": []}
        _journal(Path(root), pid, "step.confidence", fork_id="main", step_id="step_001", confidence=confidence)
        _journal(Path(root), pid, "step.waiting_approval", fork_id="main", step_id="step_001")
        payload = {"plan_id": pid, "fork_id": "main", "step_id": "step_001", "title": "Risky step",
                   "state": "waiting_approval", "confidence": {"score": 0.3, "level": "low"}, "reason": None,
                   "paths": {"task": None, "result": None, "provenance": None}}
        if on_step:
            on_step(payload)
        if on_approval:
            on_approval("main", "step_001", confidence)
        for _ in range(200):
            decided = _decision(Path(root), pid, "step_001")
            if decided or (cancel is not None and cancel.is_set()):
                break
            await asyncio.sleep(0.05)
        if on_step:
            on_step({**payload, "state": "pending" if decided == "approved" else "failed"})
        return {"plan_id": pid, "outcome": decided or "halted"}
    steps = 50 if "slow" in goal else 4
    for i in range(steps):
        if cancel is not None and cancel.is_set():
            _log("cancelled", plan_id=pid)
            return {"plan_id": pid, "outcome": "cancelled"}
        if on_progress:
            on_progress(f"step {i + 1} of {steps}", (i + 1) / steps)
        await asyncio.sleep(0.1)
    return {"plan_id": pid, "outcome": "completed", "mode": mode, "forks": forks}


async def resume(root: Any, plan_id: str | None = None, *, cancel: Any = None, on_progress: Any = None,
                 on_step: Any = None, on_approval: Any = None, llm: Any = None) -> dict[str, Any]:
    _log("resume", plan_id=plan_id)
    if on_progress:
        on_progress("resuming", 0.5)
    return {"plan_id": plan_id, "outcome": "completed"}


def approve_step(root: Any, step_id: str, plan_id: str | None = None, fork_id: str | None = None,
                 decision: str = "approve", by: str | None = None) -> dict[str, Any]:
    _log("approve_step", step_id=step_id, plan_id=plan_id, decision=decision)
    _journal(Path(root), plan_id or "p1", "step.approved" if decision == "approve" else "step.rejected",
             fork_id=fork_id or "main", step_id=step_id, by="editor")
    return {"step_id": step_id, "plan_id": plan_id, "decision": decision}


def explain_step(root: Any, step_id: str, plan_id: str | None = None, fork_id: str | None = None) -> dict[str, Any]:
    _log("explain_step", step_id=step_id, plan_id=plan_id)
    return {"step_id": step_id, "plan_id": plan_id, "markdown": f"### EXPLAINED {step_id}\n\nfrom the engine"}


def status(root: Any) -> dict[str, Any]:
    if (Path(root) / "RAISE").exists():
        raise RuntimeError("scripted failure")
    return {"plans": []}


def list_events(root: Any, plan_id: str | None = None, *, types: list[str] | None = None,
                fork_id: str | None = None, step_id: str | None = None) -> list[dict[str, Any]]:
    _log("list_events", plan_id=plan_id, types=types, step_id=step_id)
    return [{"seq": 0, "type": (types or ["plan.created"])[0], "plan_id": plan_id or "p1"}]


def handoff_metrics(root: Any) -> dict[str, Any]:
    return {"handed_off": 1, "completed": 0}


def verify_project(root: Any) -> dict[str, Any]:
    return {"ok": True, "checked": 0}


def validate_paths(paths: Any) -> list[dict[str, Any]]:
    from conductor.engine.api import validate_paths as real

    return real(paths)


def effective_policy(root: Any = None, *, plan_id: str | None = None, step_id: str | None = None,
                     show_origin: bool = True) -> dict[str, Any]:
    from conductor.engine.api import effective_policy as real

    return real(root, plan_id=plan_id, step_id=step_id, show_origin=show_origin)


def init_project(path: Any, name: str | None = None) -> dict[str, Any]:
    target = Path(path)
    (target / ".conductor").mkdir(parents=True, exist_ok=True)
    _log("init_project", path=path)
    return {"root": str(target), "created": [".conductor/policy.yaml"], "at": time.time() > 0}
