"""Approvals: a step waiting at LOW confidence is put to the user with ``window/showMessageRequest``.

Approve / Skip go through the engine API's ``approve_step`` exactly like ``conductor approve``
(Skip is a ``reject`` decision); Explain shows the step's explanation and asks again. A
client without showMessageRequest still sees the step as a diagnostic and a code lens.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from conductor.lsp.steps import Key, explain_markdown, key

if TYPE_CHECKING:
    from conductor.engine import api
    from conductor.lsp.server import ConductorServer
else:  # the engine API loads on first use (see conductor.lsp.lazy_api)
    from conductor.lsp.lazy_api import api

APPROVE, SKIP, EXPLAIN = "Approve", "Skip", "Explain"


class Approvals:
    def __init__(self, ls: ConductorServer) -> None:
        self.ls = ls
        self.asked: set[Key] = set()
        self.answers: list[dict[str, str]] = []

    def ask(self, step: api.StepView) -> None:
        if key(step) in self.asked or not self.ls.caps.show_message_request:
            return
        self.asked.add(key(step))
        task = asyncio.ensure_future(self._ask(step))
        self.ls.background.add(task)
        task.add_done_callback(self.ls.background.discard)

    def ask_engine(self, plan_id: str, fork_id: str, step_id: str, confidence: Any) -> None:
        """The engine's ``on_approval`` callback: a step of a running plan waits for a person."""
        known = self.ls.steps.snapshot.get((plan_id, fork_id, step_id))
        if known is None:
            score = confidence.get("score") if isinstance(confidence, dict) else None
            level = confidence.get("level") if isinstance(confidence, dict) else None
            known = api.StepView.model_validate({
                "plan_id": plan_id, "fork_id": fork_id, "step_id": step_id, "kind": "step", "title": "",
                "state": "waiting_approval", "since": None, "waiting_for": "approval", "waiting_since": None,
                "claimed": False, "executor": None, "attempts": 0,
                "confidence": {"score": score, "level": level} if score is not None and level else None,
                "reason": None, "paths": {}})
        self.ask(known)

    async def _ask(self, step: api.StepView) -> None:
        ls = self.ls
        score = step.confidence.score if step.confidence else "?"
        message = (f"Conductor: {step.step_id} ({step.title or 'untitled'}) of plan {step.plan_id} waits for "
                   f"approval: LOW confidence {score}.")
        for _ in range(3):
            try:
                answer = await ls.window_show_message_request_async(lsp.ShowMessageRequestParams(
                    type=lsp.MessageType.Warning, message=message,
                    actions=[lsp.MessageActionItem(title=APPROVE), lsp.MessageActionItem(title=SKIP),
                             lsp.MessageActionItem(title=EXPLAIN)]))
            except Exception as exc:
                ls.log_error(f"approval request for {step.step_id} failed: {exc!r}")
                self.asked.discard(key(step))
                return
            if answer is None:
                self.asked.discard(key(step))  # dismissed: ask again on the next change
                return
            if answer.title == EXPLAIN:
                markdown = await explain_markdown(ls.project_root_or_workspace(), step.step_id, step.plan_id,
                                                  step.fork_id)
                ls.show((markdown or f"{step.step_id}: no explanation yet")[:4000])
                continue
            decision = "approve" if answer.title == APPROVE else "reject"
            self.answers.append({"step_id": step.step_id, "plan_id": step.plan_id, "decision": decision})
            try:
                await asyncio.to_thread(api.approve_step, ls.project_root_or_workspace(), step.step_id,
                                        step.plan_id, step.fork_id, decision)
            except api.EngineError as exc:
                ls.show(f"Conductor could not record the {decision} of {step.step_id}: {exc}", lsp.MessageType.Error)
                self.asked.discard(key(step))
                return
            ls.show(f"{step.step_id} {'approved' if decision == 'approve' else 'skipped'}")
            ls.steps.refresh()
            return
