"""Code lenses on each plan step and each task file: Hand off, Approve (LOW only), Explain, Open result."""

from __future__ import annotations

from typing import Any

from lsprotocol import types as lsp

from conductor.lsp.documents import Analysis
from conductor.lsp.positions import Lines
from conductor.lsp.steps import StepInfo, plan_id_of, step_range


def _lens(rng: lsp.Range, title: str, command: str, args: dict[str, Any]) -> lsp.CodeLens:
    return lsp.CodeLens(range=rng, command=lsp.Command(title=title, command=command, arguments=[args]))


def lenses(analysis: Analysis, lines: Lines, steps: list[StepInfo]) -> list[lsp.CodeLens]:
    data = analysis.doc.data if isinstance(analysis.doc.data, dict) else None
    if data is None:
        return []
    entries: list[tuple[str, str | None, bool]] = []  # (step_id, plan_id, low)
    if analysis.kind == "task" and isinstance(data.get("task_id"), str):
        level = (data.get("confidence") or {}).get("level") if isinstance(data.get("confidence"), dict) else None
        entries.append((data["task_id"], data.get("plan_id"), level == "low"))
    elif analysis.kind == "plan":
        plan_id = plan_id_of(analysis.path)
        for step in data.get("steps") or []:
            if isinstance(step, dict) and isinstance(step.get("id"), str):
                estimate = step.get("estimated_confidence")
                entries.append((step["id"], plan_id, isinstance(estimate, int | float) and estimate < 0.5))
    out: list[lsp.CodeLens] = []
    for step_id, plan_id, low in entries:
        info = next((s for s in steps if s.step_id == step_id and (plan_id is None or s.plan_id == plan_id)), None)
        if info is not None and info.confidence:
            low = info.confidence.get("level") == "low"
        waiting = info is not None and info.state == "waiting_approval"
        rng = lines.range(step_range(analysis, step_id))
        args: dict[str, Any] = {"step_id": step_id}
        if plan_id:
            args["plan_id"] = plan_id
        state = f" ({info.state.replace('_', ' ')})" if info else ""
        if plan_id:
            out.append(_lens(rng, f"▶ Hand off{state}", "conductor.resume", {"plan_id": plan_id}))
        if low or waiting:
            out.append(_lens(rng, "✓ Approve", "conductor.approve", {**args, "decision": "approve"}))
        out.append(_lens(rng, "Explain", "conductor.explain", args))
        result = info.result if info is not None else None
        if result is None and analysis.kind == "task":
            candidate = analysis.path.with_name(f"{step_id}.result.json")
            result = candidate if candidate.exists() else None
        if result is not None:
            out.append(_lens(rng, "Open result", "conductor.openResult", {"path": str(result)}))
    return out
