"""Code lenses on each plan step and each task file: Hand off, Approve (a step waiting for it), Explain, Open result.

A plan document's lenses show the state of exactly its own plan and fork (from the engine's
view of the steps); a plan document that is not one of the engine's gets Explain only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from conductor.lsp.documents import Analysis
from conductor.lsp.positions import Lines
from conductor.lsp.steps import document_scope, step_range

if TYPE_CHECKING:
    from conductor.engine import api
else:  # the engine API loads on first use (see conductor.lsp.lazy_api)
    from conductor.lsp.lazy_api import api


def _lens(rng: lsp.Range, title: str, command: str, args: dict[str, Any]) -> lsp.CodeLens:
    return lsp.CodeLens(range=rng, command=lsp.Command(title=title, command=command, arguments=[args]))


def lenses(analysis: Analysis, lines: Lines, steps: list[api.StepView]) -> list[lsp.CodeLens]:
    data = analysis.doc.data if isinstance(analysis.doc.data, dict) else None
    if data is None:
        return []
    plan_id, fork_id = document_scope(analysis)
    entries: list[tuple[str, bool]] = []  # (step_id, low by the document's own words)
    if analysis.kind == "task" and isinstance(data.get("task_id"), str):
        level = (data.get("confidence") or {}).get("level") if isinstance(data.get("confidence"), dict) else None
        entries.append((data["task_id"], level == "low"))
    elif analysis.kind == "plan":
        for step in data.get("steps") or []:
            if isinstance(step, dict) and isinstance(step.get("id"), str):
                estimate = step.get("estimated_confidence")
                entries.append((step["id"], isinstance(estimate, int | float) and estimate < 0.5))
    by_id = {s.step_id: s for s in steps}
    out: list[lsp.CodeLens] = []
    for step_id, low in entries:
        info = by_id.get(step_id)
        if info is not None and info.confidence:
            low = info.confidence.level == "low"
        waiting = info is not None and info.state == "waiting_approval"
        rng = lines.range(step_range(analysis, step_id))
        args: dict[str, Any] = {"step_id": step_id}
        if plan_id:
            args["plan_id"] = plan_id
        state = f" ({info.state.replace('_', ' ')})" if info else ""
        if plan_id:
            out.append(_lens(rng, f"▶ Hand off{state}", "conductor.resume", {"plan_id": plan_id}))
        if waiting or (low and info is None and analysis.kind == "task"):
            approve = {**args, "decision": "approve", **({"fork_id": fork_id} if fork_id and plan_id else {})}
            out.append(_lens(rng, "✓ Approve", "conductor.approve", approve))
        out.append(_lens(rng, "Explain", "conductor.explain", args))
        result = Path(info.paths.result) if info is not None and info.paths.result else None
        if result is None and analysis.kind == "task":
            candidate = analysis.path.with_name(f"{step_id}.result.json")
            result = candidate if candidate.exists() else None
        if result is not None:
            out.append(_lens(rng, "Open result", "conductor.openResult", {"path": str(result)}))
    return out
