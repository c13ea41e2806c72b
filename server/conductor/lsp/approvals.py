"""Approvals: a step waiting at LOW confidence is put to the user with ``window/showMessageRequest``.

Approve / Skip go through the facade's ``approve_step`` exactly like ``conductor approve``
(Skip is a ``reject`` decision); Explain shows the step's explanation and asks again. A
client without showMessageRequest still sees the step as a diagnostic and a code lens.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from conductor.lsp import engine
from conductor.lsp.steps import StepInfo, step_markdown

if TYPE_CHECKING:
    from conductor.lsp.server import ConductorServer

APPROVE, SKIP, EXPLAIN = "Approve", "Skip", "Explain"


class Approvals:
    def __init__(self, ls: ConductorServer) -> None:
        self.ls = ls
        self.asked: set[tuple[str, str, str]] = set()
        self.answers: list[dict[str, str]] = []

    def ask(self, info: StepInfo) -> None:
        if info.key in self.asked or not self.ls.caps.show_message_request:
            return
        self.asked.add(info.key)
        task = asyncio.ensure_future(self._ask(info))
        self.ls.background.add(task)
        task.add_done_callback(self.ls.background.discard)

    def ask_engine(self, plan_id: str, fork_id: str, step_id: str, confidence: Any) -> None:
        """The engine's ``on_approval`` callback: a step of a running plan waits for a person."""
        known = self.ls.steps.snapshot.get((plan_id, fork_id, step_id))
        info = StepInfo(plan_id, fork_id, step_id, known.title if known else "", "waiting_approval",
                        {"score": confidence.get("score"), "level": confidence.get("level")}
                        if isinstance(confidence, dict) else None)
        if known is not None:
            info.task_data = known.task_data
        self.ask(info)

    async def _ask(self, info: StepInfo) -> None:
        ls = self.ls
        score = info.confidence["score"] if info.confidence else "?"
        message = (f"Conductor: {info.step_id} ({info.title or 'untitled'}) of plan {info.plan_id} waits for "
                   f"approval: LOW confidence {score}.")
        for _ in range(3):
            try:
                answer = await ls.window_show_message_request_async(lsp.ShowMessageRequestParams(
                    type=lsp.MessageType.Warning, message=message,
                    actions=[lsp.MessageActionItem(title=APPROVE), lsp.MessageActionItem(title=SKIP),
                             lsp.MessageActionItem(title=EXPLAIN)]))
            except Exception as exc:
                ls.log_error(f"approval request for {info.step_id} failed: {exc!r}")
                self.asked.discard(info.key)
                return
            if answer is None:
                self.asked.discard(info.key)  # dismissed: ask again on the next change
                return
            if answer.title == EXPLAIN:
                root = ls.project_root_or_workspace()
                markdown = await asyncio.to_thread(step_markdown, root, info.step_id, info.plan_id,
                                                   info.task_data or None)
                ls.show(markdown[:4000])
                continue
            decision = "approve" if answer.title == APPROVE else "reject"
            self.answers.append({"step_id": info.step_id, "plan_id": info.plan_id, "decision": decision})
            try:
                await asyncio.to_thread(engine.call, "approve_step", ls.project_root_or_workspace(), info.step_id,
                                        plan_id=info.plan_id, decision=decision, fork_id=info.fork_id)
            except Exception as exc:
                ls.show(f"Conductor could not record the {decision} of {info.step_id}: {exc}", lsp.MessageType.Error)
                self.asked.discard(info.key)
                return
            ls.show(f"{info.step_id} {'approved' if decision == 'approve' else 'skipped'}")
            ls.steps.refresh()
            return
