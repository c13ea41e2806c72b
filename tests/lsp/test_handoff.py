"""The live handoff view: conductor/stepChanged, code lens refresh, approvals through showMessageRequest."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from lsprotocol import types as lsp

from tests.lsp.conftest import Recorder
from tests.lsp.helpers import PLAN_ID, dump, fork_dir, open_doc, task_path, wait_for


def notify(client, recorder: Recorder, *changes: tuple[Path, lsp.FileChangeType]) -> None:
    """The editor's file watcher (when the client registered it); otherwise the server's own sees the files."""
    if recorder.registrations:
        client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(
            changes=[lsp.FileEvent(uri=p.as_uri(), type=t) for p, t in changes]))


def journal(root: Path, *events: dict) -> Path:
    path = root / ".conductor" / "plans" / PLAN_ID / "journal.jsonl"
    with path.open("a", encoding="utf-8") as fh:
        for i, event in enumerate(events):
            fh.write(json.dumps({"seq": i, "plan_id": PLAN_ID, **event}) + "\n")
    return path


async def test_agent_claims_and_completes_a_step(client, project: Path, recorder: Recorder) -> None:
    pending = task_path(project)
    claimed = fork_dir(project, "in_progress") / pending.name
    pending.rename(claimed)  # the agent claims the task (atomic rename)
    notify(client, recorder, (pending, lsp.FileChangeType.Deleted), (claimed, lsp.FileChangeType.Created))
    change = await wait_for(lambda: next((c for c in recorder.step_changes if c["state"] == "in_progress"), None),
                            what="stepChanged in_progress")
    assert change == {
        "plan_id": "p1", "fork_id": "main", "step_id": "step_001", "title": "Add hello.py", "state": "in_progress",
        "confidence": {"score": 0.9, "level": "high"}, "reason": None,
        "paths": {"task": str(claimed), "result": None, "provenance": None},
    }
    if client.caps_name == "visual_studio_code":
        await wait_for(lambda: recorder.lens_refreshes > 0, what="workspace/codeLens/refresh")
    # the agent writes its result; Conductor verifies and moves the step to failed/
    result = claimed.with_name("step_001.result.json")
    result.write_text(dump({"contract_version": "1.0", "task_id": "step_001", "status": "failed",
                            "error": "tests do not pass"}), encoding="utf-8")
    failed = fork_dir(project, "failed")
    claimed.rename(failed / claimed.name)
    result.rename(failed / result.name)
    notify(client, recorder, (claimed, lsp.FileChangeType.Deleted), (result, lsp.FileChangeType.Deleted),
           (failed / claimed.name, lsp.FileChangeType.Created), (failed / result.name, lsp.FileChangeType.Created))
    change = await wait_for(lambda: next((c for c in recorder.step_changes if c["state"] == "failed"), None),
                            what="stepChanged failed")
    assert change["reason"] == "tests do not pass"
    assert change["paths"]["result"] == str(failed / result.name)


async def test_waiting_step_is_asked_diagnosed_and_lensed(client, project: Path, recorder: Recorder,
                                                          tmp_path: Path) -> None:
    plan = project / ".conductor" / "plans" / PLAN_ID / "plan.json"
    plan_uri = open_doc(client, plan)
    recorder.answers = ["Explain", "Skip"]
    recorder.gate = asyncio.Event()  # the user reads the diagnostic and the lens before answering
    path = journal(project,
                   {"type": "step.confidence", "data": {"fork_id": "main", "step_id": "step_002",
                                                        "confidence": {"score": 0.42, "level": "low"}}},
                   {"type": "step.waiting_approval", "data": {"fork_id": "main", "step_id": "step_002"}})
    notify(client, recorder, (path, lsp.FileChangeType.Changed))
    change = await wait_for(lambda: next((c for c in recorder.step_changes if c["state"] == "waiting_approval"),
                                         None), what="stepChanged waiting_approval")
    assert change["confidence"] == {"score": 0.42, "level": "low"} and change["title"] == "Add tests"
    # every client sees the waiting step as a diagnostic and a code lens
    diags = await wait_for(lambda: [d for d in client.diagnostics.get(plan_uri, [])
                                    if d.code == "step/waiting-approval"], what="waiting diagnostic")
    line = plan.read_text(encoding="utf-8").splitlines().index('      "id": "step_002",')
    assert diags[0].range.start.line == line and "LOW confidence 0.42" in diags[0].message
    lenses = await client.text_document_code_lens_async(lsp.CodeLensParams(
        text_document=lsp.TextDocumentIdentifier(uri=plan_uri)))
    assert [lens.command.title for lens in lenses if lens.range.start.line == line] == [
        "▶ Hand off (waiting approval)", "✓ Approve", "Explain"]
    if client.caps_name == "emacs":  # no window.showMessage capability: no prompt
        assert recorder.message_requests == []
        return
    # a client with showMessageRequest is asked: Explain shows the explanation, then Skip rejects
    recorder.gate.set()
    await wait_for(lambda: len(recorder.message_requests) == 2, what="two approval prompts")
    request = recorder.message_requests[0]
    assert [a.title for a in request.actions] == ["Approve", "Skip", "Explain"]
    assert "step_002" in request.message and "LOW confidence 0.42" in request.message
    await wait_for(lambda: any("EXPLAINED step_002" in m.message for m in client.messages), what="explanation")
    await wait_for(lambda: '"decision": "reject"' in (tmp_path / "engine.log").read_text()
                   if (tmp_path / "engine.log").exists() else False, what="approve_step(reject)")
    await wait_for(lambda: any(c["state"] == "failed" and c["step_id"] == "step_002" for c in recorder.step_changes),
                   what="step rejected")


async def test_running_plan_asks_for_approval(client, project: Path, recorder: Recorder, tmp_path: Path) -> None:
    recorder.answers = ["Approve"]
    result = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="conductor.build", arguments=[{"goal": "needs approval"}]))
    plan_id = result["plan_id"]
    change = await wait_for(lambda: next((c for c in recorder.step_changes
                                          if c["plan_id"] == plan_id and c["state"] == "waiting_approval"), None),
                            what="engine's on_step")
    assert change["title"] == "Risky step"
    if client.caps_name == "emacs":
        # no prompt; the user approves through the command (what the code lens runs)
        await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
            command="conductor.approve", arguments=[{"step_id": "step_001", "plan_id": plan_id,
                                                     "decision": "approve"}]))
    else:
        await wait_for(lambda: recorder.message_requests, what="approval prompt")
    await wait_for(lambda: any(f"build {plan_id} finished" in m.message for m in client.messages), what="done")
    log = (tmp_path / "engine.log").read_text()
    assert '"call": "approve_step", "step_id": "step_001"' in log and '"decision": "approve"' in log
    await wait_for(lambda: any(m.message == f"Conductor build {plan_id} finished (outcome: approved)"
                               for m in client.log_messages), what="the one-line outcome in the log")
