"""The live plan view: which steps exist, in which state, and what changed.

The state of every step comes from the engine API (``api.steps``: the journal's one
projection plus where the step's files are), never from a reading of our own. After a
change under ``.conductor/handoff`` or a plan's journal, :meth:`StepTracker.refresh` asks
again in a worker thread, sends ``conductor/stepChanged`` (the API's ``StepView`` as JSON)
for each step that moved, refreshes code lenses, re-checks open task and plan documents and
asks for approval of newly waiting steps. While a plan runs in the server, the engine's own
``on_step`` payloads are forwarded at once (:meth:`StepTracker.engine_step`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from conductor.lsp.documents import Analysis
from conductor.lsp.positions import Lines
from conductor.project.layout import plan_ref
from conductor.validation.diagnostics import Range

if TYPE_CHECKING:
    from conductor.engine import api
    from conductor.lsp.server import ConductorServer
else:  # the engine API loads on first use (see conductor.lsp.lazy_api)
    from conductor.lsp.lazy_api import api

log = logging.getLogger("conductor.lsp.steps")
STEP_CHANGED = "conductor/stepChanged"
Key = tuple[str, str, str]


def key(step: api.StepView) -> Key:
    return (step.plan_id, step.fork_id, step.step_id)


def scan(root: Path) -> dict[Key, api.StepView]:
    """Every step of every plan of the project at ``root`` (blocking: a worker thread calls it)."""
    try:
        return {key(s): s for s in api.steps(root)}
    except api.NotAProject:
        return {}


def document_scope(analysis: Analysis) -> tuple[str | None, str | None]:
    """(plan_id, fork_id) a task or plan document belongs to; ``(None, None)`` for a plan document
    that is not one of the engine's (a user's draft ``*.plan.json``)."""
    data = analysis.doc.data if isinstance(analysis.doc.data, dict) else {}
    if analysis.kind == "task":
        plan_id, fork_id = data.get("plan_id"), data.get("fork_id")
        return (plan_id if isinstance(plan_id, str) else None, fork_id if isinstance(fork_id, str) else None)
    ref = plan_ref(analysis.path) if analysis.kind == "plan" else None
    return ref if ref is not None else (None, None)


async def explain_markdown(root: Path | None, step_id: str, plan_id: str | None,
                           fork_id: str | None = None) -> str | None:
    """The engine's explanation of a step, or ``None`` when no journal knows it."""
    if root is None:
        return None
    try:
        explained = await asyncio.to_thread(api.explain_step, root, step_id, plan_id, fork_id)
    except api.EngineError:
        return None
    return explained.markdown


class StepTracker:
    def __init__(self, ls: ConductorServer) -> None:
        self.ls = ls
        self.snapshot: dict[Key, api.StepView] = {}
        self.task: asyncio.Future[None] | None = None
        self.again = False
        self.again_notify = False

    def scan_all(self) -> dict[Key, api.StepView]:
        current: dict[Key, api.StepView] = {}
        for root in self.ls.project_roots():
            current.update(scan(root))
        return current

    def refresh(self, notify: bool = True) -> None:
        """Ask the engine for every step in a worker thread (coalesced), then notify about changes."""
        if self.task is not None and not self.task.done():
            self.again = True
            self.again_notify = self.again_notify or notify
            return
        self.task = asyncio.ensure_future(self._refresh(notify))
        self.ls.background.add(self.task)
        self.task.add_done_callback(self.ls.background.discard)

    async def _refresh(self, notify: bool) -> None:
        try:
            while True:
                self.again, self.again_notify = False, False
                current = await asyncio.to_thread(self.scan_all)
                self.apply(current, notify)
                if not self.again:
                    return
                notify = self.again_notify
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.ls.log_error(f"reading the plans' state failed: {exc!r}")

    def apply(self, current: dict[Key, api.StepView], notify: bool = True) -> list[api.StepView]:
        changed = [step for k, step in current.items() if self.snapshot.get(k) != step]
        log.debug("plan state refresh: %d steps, %d changed, notify=%s", len(current), len(changed), notify)
        self.snapshot = current
        if notify:
            for step in changed:
                self.ls.protocol.notify(STEP_CHANGED, step.to_json())
        if changed:
            self.ls.refresh_code_lenses()
            self.ls.scheduler.revalidate_open(kinds=("task", "plan"))
        for step in current.values():
            if step.state == "waiting_approval":
                self.ls.approvals.ask(step)
        return changed

    def engine_step(self, payload: dict[str, Any]) -> None:
        """The engine reported a step change while running (``on_step``): forward it at once."""
        step = api.StepView.model_validate(payload)
        if self.snapshot.get(key(step)) != step:
            self.snapshot[key(step)] = step
            self.ls.protocol.notify(STEP_CHANGED, step.to_json())
            self.ls.refresh_code_lenses()
            self.ls.scheduler.revalidate_open(kinds=("task", "plan"))
        if step.state == "waiting_approval":
            self.ls.approvals.ask(step)

    def for_document(self, analysis: Analysis) -> list[api.StepView]:
        """Steps a task or plan document shows: a task's own step, or the steps of exactly the
        plan and fork whose plan document it is (never another plan's steps of the same id)."""
        plan_id, fork_id = document_scope(analysis)
        if plan_id is None:
            return []
        data = analysis.doc.data if isinstance(analysis.doc.data, dict) else {}
        if analysis.kind == "task":
            ids = {data.get("task_id")}
        else:
            ids = {s.get("id") for s in data.get("steps", []) if isinstance(s, dict)}
        return [s for s in self.snapshot.values()
                if s.step_id in ids and s.plan_id == plan_id and (fork_id is None or s.fork_id == fork_id)]

    def diagnostics_for(self, analysis: Analysis, lines: Lines) -> list[lsp.Diagnostic]:
        """A waiting step is visible even without showMessageRequest: a Warning diagnostic on it."""
        out = []
        for step in self.for_document(analysis):
            if step.state != "waiting_approval":
                continue
            rng = step_range(analysis, step.step_id)
            score = step.confidence.score if step.confidence else "?"
            out.append(lsp.Diagnostic(
                range=lines.range(rng), severity=lsp.DiagnosticSeverity.Warning, code="step/waiting-approval",
                source="conductor",
                message=f"{step.step_id} waits for approval (LOW confidence {score}): "
                        "approve or skip it (code lens, or `conductor approve`)",
                data={"plan_id": step.plan_id, "fork_id": step.fork_id, "step_id": step.step_id},
            ))
        return out


def step_range(analysis: Analysis, step_id: str) -> Range:
    doc = analysis.doc
    data = doc.data if isinstance(doc.data, dict) else {}
    if analysis.kind == "task":
        return doc.value_range(("task_id",))
    for i, step in enumerate(data.get("steps", [])):
        if isinstance(step, dict) and step.get("id") == step_id:
            return doc.value_range(("steps", i, "id"))
    return Range(0, 0, 0, 0)
