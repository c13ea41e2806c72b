"""workspace/executeCommand: the CLI's commands over the engine API, on engine-built projects;
progress, cancellation, engine refusals as error responses, settings, and secrets kept out."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from tests.lsp.conftest import Recorder, server_env, start_client
from tests.lsp.helpers import line_of, open_doc, wait_for
from tests.support.fixtures import Built
from tests.support.projects import conductor, init

INVALID_PARAMS = -32602
REQUEST_FAILED = -32803


async def run(client, command: str, *arguments: object) -> object:
    return await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command=command, arguments=list(arguments) if arguments else None))


def journal(root: Path, plan_id: str) -> list[dict]:
    path = root / ".conductor" / "plans" / plan_id / "journal.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


async def test_commands_are_advertised(client) -> None:
    provider = client.init_result.capabilities.execute_command_provider
    assert {"conductor.init", "conductor.explore", "conductor.build", "conductor.status", "conductor.policy",
            "conductor.explain", "conductor.events", "conductor.resume", "conductor.approve",
            "conductor.handoffMetrics", "conductor.verify", "conductor.validate"} <= set(provider.commands)


async def test_validate_matches_the_cli(client, built: Built) -> None:
    project = built.root
    result = await run(client, "conductor.validate", {})
    assert result["ok"] is True and result["errors"] == 0, result
    paths = {f["path"] for f in result["files"]}
    assert {".conductor/policy.yaml", f".conductor/plans/{built.plan_id}/main.plan.json",
            f".conductor/handoff/plan_{built.plan_id}/fork_main/pending/step_004.task.json"} <= paths
    broken = project / ".conductor" / "policy.yaml"
    broken.write_text("behaviour: {}\nbehavior:\n  max_diff_lines: -1\n", encoding="utf-8")
    result = await run(client, "conductor.validate", {"paths": [".conductor/policy.yaml"]})
    assert result["ok"] is False and result["errors"] == 2
    cli = subprocess.run([sys.executable, "-m", "conductor", "validate", ".conductor/policy.yaml"], cwd=project,
                         capture_output=True, text=True, check=False)
    assert result["files"][0]["lines"] == [line for line in cli.stdout.splitlines() if ": error " in line]
    assert any("conductor validate: 2 error(s)" in m.message for m in client.messages)


async def test_policy_with_origins_of_every_level(client, built: Built) -> None:
    result = await run(client, "conductor.policy", {})
    assert result["ok"] is True
    line = line_of(built.root / ".conductor" / "policy.yaml", "max_diff_lines:") + 1
    assert result["policy"]["behavior"]["max_diff_lines"] == {
        "value": 500, "origin": {"level": "project", "file": ".conductor/policy.yaml", "line": line}}
    assert result["policy"]["behavior"]["fork_below"]["origin"]["level"] == "default"
    step = await run(client, "conductor.policy", {"plan_id": built.plan_id, "step_id": "step_004"})
    assert [(v["value"]["name"], v["origin"]["level"]) for v in step["policy"]["verification"]] == [
        ("project check", "project"), ("plan check", "plan"), ("step check", "step")]


async def test_engine_commands_on_a_real_plan(client, built: Built) -> None:
    explained = await run(client, "conductor.explain", {"step_id": "step_001", "plan_id": built.plan_id})
    assert explained["markdown"].startswith("# step_001: A step whose agent fails")
    assert explained["failure"]["cause"] == "evidence/executor-failed"
    events = await run(client, "conductor.events", {"plan_id": built.plan_id, "type": "step.failed"})
    assert [(e["type"], e["data"]["step_id"]) for e in events] == [("step.failed", "step_001")]
    status = await run(client, "conductor.status", {})
    cli = json.loads(conductor("status", "--json", cwd=built.root).stdout)
    assert status == cli and len(status["plans"]) == 2
    metrics = await run(client, "conductor.handoffMetrics", {})
    assert metrics["forks"][f"{built.plan_id}/main"]["failed"] == 1 and metrics["overall"]["failed"] == 1
    assert (await run(client, "conductor.verify"))["ok"] is True
    init = await run(client, "conductor.init", {"path": "sub"})
    assert init["root"].endswith("sub") and (built.root / "sub" / ".conductor" / "policy.yaml").is_file()
    approved = await run(client, "conductor.approve", {"step_id": "step_003", "plan_id": built.plan_id,
                                                       "decision": "reject"})
    assert approved["decision"] == "reject" and approved["forks"] == ["main"]
    assert journal(built.root, built.plan_id)[-1]["type"] == "step.rejected"
    with pytest.raises(JsonRpcException) as info:  # an engine refusal is an error response with its code
        await run(client, "conductor.approve", {"step_id": "step_003", "plan_id": built.plan_id,
                                                "decision": "approve"})
    assert info.value.code == REQUEST_FAILED and "not waiting for approval (main: skipped)" in info.value.message
    assert info.value.data == {"code": "step/not-waiting"}
    with pytest.raises(JsonRpcException) as info:
        await run(client, "conductor.explain", {"step_id": "step_042", "plan_id": built.plan_id})
    assert info.value.code == INVALID_PARAMS and info.value.data == {"code": "step/not-found"}


BAD_ARGUMENTS = {
    "two-args": [{"step_id": "step_001"}, {"extra": 1}],
    "not-object": ["step_001"],
    "wrong-type": [{"step_id": 7}],
    "unknown-key": [{"step_id": "step_001", "bogus": True}],
}


async def test_invalid_params(project: Path, tmp_path: Path) -> None:
    client = await start_client(project, "visual_studio_code", tmp_path, Recorder())
    try:
        for name, arguments in BAD_ARGUMENTS.items():
            with pytest.raises(JsonRpcException) as info:
                await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
                    command="conductor.explain", arguments=arguments))
            assert info.value.code == INVALID_PARAMS, name
        with pytest.raises(JsonRpcException) as info:
            await run(client, "conductor.approve", {"step_id": "step_001", "decision": "maybe"})
        assert info.value.code == INVALID_PARAMS
        with pytest.raises(JsonRpcException):
            await run(client, "conductor.nope", {})
        assert (await run(client, "conductor.policy"))["ok"] is True  # still serving
    finally:
        await client.shutdown_session()
        await client.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A project just made by `conductor init` (no agent: a build waits for its planning task)."""
    return init(tmp_path / "fresh")


async def test_build_returns_at_once_reports_progress_and_halts_on_cancel(fresh: Path, tmp_path: Path) -> None:
    client = await start_client(fresh, "visual_studio_code", tmp_path, Recorder())
    try:
        # no agent runs here, so the build cannot end: a command that waited for it would never answer
        result = await asyncio.wait_for(run(client, "conductor.build", {"goal": "Say hello"}), timeout=60)
        assert result["status"] == "running" and result["token"]
        plan_id, token = result["plan_id"], result["token"]
        await wait_for(lambda: any(e["type"] == "plan.created" for e in journal(fresh, plan_id)), timeout=30,
                       what="the plan created under the id the command answered")
        reports = client.progress_reports[token]  # all three clients declare window.workDoneProgress
        assert isinstance(reports[0], lsp.WorkDoneProgressBegin) and reports[0].cancellable
        await wait_for(lambda: any(isinstance(r, lsp.WorkDoneProgressReport)
                                   and "planning fork main" in (r.message or "")
                                   for r in client.progress_reports[token]), timeout=30, what="the engine's progress")
        # other requests are answered while the engine waits for an agent (that never comes)
        uri = open_doc(client, fresh / ".conductor" / "policy.yaml")
        hover = await asyncio.wait_for(client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=7, character=4))), 60)
        assert hover is not None
        client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
        await wait_for(lambda: isinstance(client.progress_reports[token][-1], lsp.WorkDoneProgressEnd), timeout=30,
                       what="progress end")
        assert client.progress_reports[token][-1].message == "cancelled"
        assert journal(fresh, plan_id)[-1]["type"] == "plan.halted"  # resumable
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_cancel_command_and_resume(fresh: Path, tmp_path: Path) -> None:
    client = await start_client(fresh, "neovim", tmp_path, Recorder())
    try:
        result = await run(client, "conductor.explore", {"goal": "Say hello", "forks": 2})
        plan_id = result["plan_id"]
        await wait_for(lambda: journal(fresh, plan_id), timeout=30, what="the journal")
        cancelled = await run(client, "conductor.cancel", {"plan_id": plan_id})
        assert cancelled["cancelled"] == [result["token"]]
        await wait_for(lambda: journal(fresh, plan_id)[-1]["type"] == "plan.halted", timeout=30, what="halted")
        await wait_for(lambda: any(f"explore {plan_id} cancelled" in m.message for m in client.messages), timeout=30,
                       what="the job ended (the plan's lock released)")
        assert journal(fresh, plan_id)[0]["data"]["forks"] == 2
        resumed = await run(client, "conductor.resume", {"plan_id": plan_id[:5]})
        assert resumed["plan_id"] == plan_id
        await wait_for(lambda: any(e["type"] == "plan.resumed" for e in journal(fresh, plan_id)), timeout=30,
                       what="resumed")
        await run(client, "conductor.cancel", {"token": resumed["token"]})
        await wait_for(lambda: any(f"resume {plan_id} cancelled" in m.message for m in client.messages), timeout=30,
                       what="resume cancelled")
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_a_damaged_journal_is_an_error_response_not_a_crash(built: Built, tmp_path: Path) -> None:
    client = await start_client(built.root, "neovim", tmp_path, Recorder())
    try:
        path = built.root / ".conductor" / "plans" / built.plan_id / "journal.jsonl"
        with path.open("a", encoding="utf-8") as fh:
            fh.write("this line is not an event\n")
        with pytest.raises(JsonRpcException) as info:
            await run(client, "conductor.status", {})
        assert "not a journal event" in info.value.message and info.value.data == {"code": "journal/damaged"}
        assert any("not a journal event" in m.message for m in client.log_messages)
        assert (await run(client, "conductor.policy", {}))["ok"] is True
    finally:
        await client.shutdown_session()
        await client.stop()
    assert client._server.returncode == 0  # clean exit after shutdown + exit


async def test_exits_when_the_editor_dies(project: Path, tmp_path: Path) -> None:
    editor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    from pytest_lsp import ClientServerConfig, client_capabilities

    from tests.lsp.conftest import SERVER

    client = await ClientServerConfig(server_command=SERVER, server_env=server_env(tmp_path)).start()
    try:
        await client.initialize_session(lsp.InitializeParams(
            capabilities=client_capabilities("neovim"), process_id=editor.pid, root_uri=project.as_uri()))
        editor.kill()
        editor.wait()
        await asyncio.wait_for(client._server.wait(), 10)
        assert client._server.returncode == 0
    finally:
        client._stop_event.set()
        await client.stop()


async def test_settings_reach_the_engine_and_keys_never_do(fresh: Path, tmp_path: Path) -> None:
    secret = "sk-never-log-this"
    client = await start_client(fresh, "visual_studio_code", tmp_path, Recorder(),
                                init_options={"mode": "llm", "forks": 5, "apiKey": secret})
    try:
        result = await run(client, "conductor.explore", {"goal": "Say hello"})
        await wait_for(lambda: journal(fresh, result["plan_id"]), timeout=30, what="the plan created")
        await run(client, "conductor.cancel", {"plan_id": result["plan_id"]})
        await wait_for(lambda: any(f"explore {result['plan_id']} " in m.message for m in client.messages),
                       timeout=30, what="explore ended")
        created = journal(fresh, result["plan_id"])[0]
        assert created["type"] == "plan.created" and created["data"]["mode"] == "llm" and created["data"]["forks"] == 5
        assert all(secret not in m.message for m in [*client.log_messages, *client.messages])
        assert not [p for p in fresh.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_validating_a_large_folder_blocks_nothing_and_stops_on_cancel(built: Built, tmp_path: Path) -> None:
    """Issue 13: `conductor.validate` of a large system folder blocked every request for seconds and
    ignored its `$/cancelRequest`. The walk now runs in a worker thread and stops between files."""
    client = await start_client(built.root, "neovim", tmp_path, Recorder())
    try:
        big = Path("/usr")  # hundreds of thousands of entries: walking it all takes many seconds
        walking = asyncio.ensure_future(client.protocol.send_request_async(
            lsp.WORKSPACE_EXECUTE_COMMAND, lsp.ExecuteCommandParams(command="conductor.validate",
                                                                    arguments=[{"paths": [str(big)]}]),
            msg_id="validate-usr"))
        await asyncio.sleep(0.3)
        uri = open_doc(client, built.root / ".conductor" / "policy.yaml")
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=7, character=4)))
        assert hover is not None and not walking.done()  # answered while the walk goes on
        client.protocol.notify("$/cancelRequest", lsp.CancelParams(id="validate-usr"))
        with pytest.raises(JsonRpcException) as info:
            await asyncio.wait_for(walking, 30)
        assert info.value.code == -32800  # RequestCancelled
        assert (await run(client, "conductor.validate", {}))["ok"] is True  # and the server goes on
    finally:
        await client.shutdown_session()
        await client.stop()
