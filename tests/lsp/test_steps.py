"""The live plan view: approvals put to the user, conductor/stepChanged, and the state of every step
as the engine API gives it (never a reading of the server's own)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from tests.lsp.conftest import CLIENTS, Recorder, start_client
from tests.lsp.helpers import fork_dir, line_of, notify, open_doc, plan_document, wait_for
from tests.support.fixtures import Built


def journal(root: Path, plan_id: str) -> list[dict]:
    path = root / ".conductor" / "plans" / plan_id / "journal.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("caps_name", CLIENTS)
async def test_a_waiting_step_is_asked_diagnosed_and_lensed(caps_name: str, built: Built, tmp_path: Path) -> None:
    """step_003 of the engine's plan waits at LOW confidence: every client sees a diagnostic and a
    lens; a client with showMessageRequest is asked (Explain shows the engine's explanation, then
    Skip records a rejection exactly as `conductor approve --reject` does)."""
    recorder = Recorder()
    recorder.answers = ["Explain", "Skip"]
    recorder.gate = asyncio.Event()  # the user reads the diagnostic and the lens before answering
    client = await start_client(built.root, caps_name, tmp_path, recorder)
    client.caps_name = caps_name
    try:
        await _waiting_step(client, built, recorder)
    finally:
        await client.shutdown_session()
        await client.stop()


async def _waiting_step(client: LanguageClient, built: Built, recorder: Recorder) -> None:
    plan = plan_document(built.root, built.plan_id)
    plan_uri = open_doc(client, plan)
    diags = await wait_for(lambda: [d for d in client.diagnostics.get(plan_uri, [])
                                    if d.code == "step/waiting-approval"], what="waiting diagnostic")
    line = line_of(plan, '"id": "step_003"')
    assert diags[0].range.start.line == line and "LOW confidence 0.69" in diags[0].message
    lenses = await client.text_document_code_lens_async(lsp.CodeLensParams(
        text_document=lsp.TextDocumentIdentifier(uri=plan_uri)))
    assert [lens.command.title for lens in lenses if lens.range.start.line == line] == [
        "▶ Hand off (waiting approval)", "✓ Approve", "Explain"]
    if client.caps_name == "emacs":  # no window.showMessage capability: no prompt; the lens's command
        assert recorder.message_requests == []
        approve = next(lens for lens in lenses if lens.command.title == "✓ Approve")
        await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
            command=approve.command.command, arguments=[{**approve.command.arguments[0], "decision": "reject"}]))
    else:
        await wait_for(lambda: recorder.message_requests, what="the approval prompt")
        recorder.gate.set()
        await wait_for(lambda: len(recorder.message_requests) == 2, what="two approval prompts")
        request = recorder.message_requests[0]
        assert [a.title for a in request.actions] == ["Approve", "Skip", "Explain"]
        assert "step_003" in request.message and "LOW confidence 0.69" in request.message
        await wait_for(lambda: any(m.message.startswith("# step_003: A risky step waiting for approval")
                                   for m in client.messages), what="the engine's explanation")
    rejected = await wait_for(lambda: [e for e in journal(built.root, built.plan_id) if e["type"] == "step.rejected"
                                       and e["data"]["step_id"] == "step_003"], what="the rejection journaled")
    assert rejected[0]["data"]["fork_id"] == "main"
    change = await wait_for(lambda: next((c for c in recorder.step_changes if c["step_id"] == "step_003"), None),
                            what="stepChanged of step_003")
    assert change["state"] == "skipped" and change["plan_id"] == built.plan_id and change["waiting_for"] is None
    await wait_for(lambda: not [d for d in client.diagnostics.get(plan_uri, []) if d.code == "step/waiting-approval"],
                   what="the waiting diagnostic gone")


async def test_an_agent_claiming_the_handed_off_task_is_seen(client, built: Built, recorder: Recorder) -> None:
    pending = fork_dir(built.root, built.plan_id, "pending") / "step_004.task.json"
    claimed = fork_dir(built.root, built.plan_id, "in_progress") / pending.name
    claimed.parent.mkdir(parents=True, exist_ok=True)
    pending.rename(claimed)  # what an agent does to claim (an atomic rename)
    notify(client, bool(recorder.registrations), (pending, lsp.FileChangeType.Deleted),
           (claimed, lsp.FileChangeType.Created))
    change = await wait_for(lambda: next((c for c in recorder.step_changes if c["step_id"] == "step_004"), None),
                            what="stepChanged of step_004")
    # claimed, and (the plan being halted) waiting for nobody until `conductor resume`
    assert change["state"] == "in_progress" and change["claimed"] is True and change["waiting_for"] is None
    assert change["paths"]["task"] == str(claimed) and change["plan_id"] == built.plan_id
    if client.caps_name == "visual_studio_code":
        await wait_for(lambda: recorder.lens_refreshes > 0, what="workspace/codeLens/refresh")
