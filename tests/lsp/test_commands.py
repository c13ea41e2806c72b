"""workspace/executeCommand: the CLI's commands over the facade; progress, cancellation, errors."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from tests.lsp.conftest import Recorder, server_env, start_client
from tests.lsp.helpers import open_doc, wait_for

INVALID_PARAMS = -32602


async def run(client, command: str, *arguments: object) -> object:
    return await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command=command, arguments=list(arguments) if arguments else None))


async def test_commands_are_advertised(client) -> None:
    provider = client.init_result.capabilities.execute_command_provider
    assert {"conductor.init", "conductor.explore", "conductor.build", "conductor.status", "conductor.policy",
            "conductor.explain", "conductor.events", "conductor.resume", "conductor.approve",
            "conductor.handoffMetrics", "conductor.verify", "conductor.validate"} <= set(provider.commands)


async def test_validate_matches_the_cli(client, project: Path) -> None:
    result = await run(client, "conductor.validate", {})
    assert result["ok"] is True and result["errors"] == 0
    assert {f["path"] for f in result["files"]} >= {".conductor/policy.yaml", ".conductor/plans/p1/plan.json"}
    broken = project / ".conductor" / "policy.yaml"
    broken.write_text("behaviour: {}\nbehavior:\n  max_diff_lines: -1\n", encoding="utf-8")
    result = await run(client, "conductor.validate", {"paths": [".conductor/policy.yaml"]})
    assert result["ok"] is False and result["errors"] == 2
    cli = subprocess.run([sys.executable, "-m", "conductor", "validate", ".conductor/policy.yaml"], cwd=project,
                         capture_output=True, text=True, check=False)
    assert result["files"][0]["lines"] == [line for line in cli.stdout.splitlines() if ": error " in line]
    assert any("conductor validate: 2 error(s)" in m.message for m in client.messages)


async def test_policy_with_origins(client, project: Path) -> None:
    result = await run(client, "conductor.policy", {})
    assert result["ok"] is True
    behavior = result["policy"]["behavior"]
    assert behavior["max_diff_lines"] == {"value": 400, "origin": {"level": "project",
                                                                  "file": ".conductor/policy.yaml", "line": 8}}
    assert behavior["max_repairs"]["origin"]["level"] == "default"


async def test_facade_commands(client, project: Path) -> None:
    explained = await run(client, "conductor.explain", {"step_id": "step_001", "plan_id": "p1"})
    assert explained["markdown"].startswith("### EXPLAINED step_001")
    events = await run(client, "conductor.events", {"plan_id": "p1", "type": "step.claimed"})
    assert events == [{"seq": 0, "type": "step.claimed", "plan_id": "p1"}]
    assert await run(client, "conductor.status", {}) == {"plans": []}
    assert (await run(client, "conductor.handoffMetrics", {}))["handed_off"] == 1
    assert (await run(client, "conductor.verify"))["ok"] is True
    init = await run(client, "conductor.init", {"path": "sub"})
    assert init["root"].endswith("sub") and (project / "sub" / ".conductor").is_dir()
    approved = await run(client, "conductor.approve", {"step_id": "step_002", "plan_id": "p1",
                                                       "decision": "reject"})
    assert approved["decision"] == "reject"


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


async def test_build_reports_progress_and_returns_at_once(client, project: Path, tmp_path: Path) -> None:
    started = time.perf_counter()
    result = await run(client, "conductor.build", {"goal": "Say hello"})
    assert time.perf_counter() - started < 2.5
    assert result["status"] == "running" and result["plan_id"] and result["token"]
    token = result["token"]
    await wait_for(lambda: any(m.message.endswith("finished") for m in client.messages), what="finished message")
    log = [json.loads(line) for line in (tmp_path / "engine.log").read_text().splitlines()]
    assert log[0]["call"] == "run_goal" and log[0]["forks"] == "1" and log[0]["plan_id"] == result["plan_id"]
    reports = client.progress_reports[token]  # all three clients declare window.workDoneProgress
    assert isinstance(reports[0], lsp.WorkDoneProgressBegin) and reports[0].cancellable
    middle = [r for r in reports if isinstance(r, lsp.WorkDoneProgressReport)]
    assert [r.percentage for r in middle] == [25, 50, 75, 100]
    assert isinstance(reports[-1], lsp.WorkDoneProgressEnd) and reports[-1].message == "finished"
    # one line per user-visible event at Info (the whole outcome goes to the trace)
    await wait_for(lambda: any(m.message == f"Conductor build {result['plan_id']} finished (outcome: completed)"
                               for m in client.log_messages), what="the one-line outcome in the log")


async def test_explore_is_cancellable_and_does_not_block(client, project: Path, tmp_path: Path) -> None:
    result = await run(client, "conductor.explore", {"goal": "a slow goal", "forks": 2})
    token = result["token"]
    await wait_for(lambda: len(client.progress_reports.get(token, [])) >= 3, what="some progress")
    # other requests stay fast while it runs
    uri = open_doc(client, project / ".conductor" / "policy.yaml")
    started = time.perf_counter()
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=0, character=2)))
    assert hover is not None and time.perf_counter() - started < 2.0
    client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    await wait_for(lambda: isinstance(client.progress_reports[token][-1], lsp.WorkDoneProgressEnd),
                   what="progress end")
    assert client.progress_reports[token][-1].message == "cancelled"
    log = (tmp_path / "engine.log").read_text()
    assert '"forks": "2"' in log and '"call": "cancelled"' in log


async def test_cancel_command_and_resume(client, project: Path) -> None:
    result = await run(client, "conductor.explore", {"goal": "slow again"})
    cancelled = await run(client, "conductor.cancel", {"plan_id": result["plan_id"]})
    assert cancelled["cancelled"] == [result["token"]]
    resumed = await run(client, "conductor.resume", {"plan_id": "p1"})
    assert resumed["plan_id"] == "p1"
    await wait_for(lambda: any("resume p1 finished" in m.message for m in client.messages), what="resume done")


async def test_errors_become_responses_not_crashes(project: Path, tmp_path: Path) -> None:
    client = await start_client(project, "neovim", tmp_path, Recorder())
    try:
        (project / "RAISE").write_text("x", encoding="utf-8")
        with pytest.raises(JsonRpcException) as info:
            await run(client, "conductor.status", {})
        assert "scripted failure" in str(info.value.message)
        assert any("scripted failure" in m.message for m in client.log_messages)
        assert (await run(client, "conductor.policy", {}))["ok"] is True
    finally:
        await client.shutdown_session()
        await client.stop()
    assert client._server.returncode == 0  # clean exit after shutdown + exit


async def test_real_facade(project: Path, tmp_path: Path) -> None:
    client = await start_client(project, "visual_studio_code", tmp_path, Recorder(),
                                env=server_env(tmp_path, engine=None))
    try:
        status = await run(client, "conductor.status", {})
        assert isinstance(status["plans"], list)
        explained = await run(client, "conductor.explain", {"step_id": "step_001", "plan_id": "p1"})
        assert "Create hello.py that prints Hello." in explained["markdown"]  # no journal yet: the task file
        metrics = await run(client, "conductor.handoffMetrics", {})
        assert isinstance(metrics, dict)
    finally:
        await client.shutdown_session()
        await client.stop()


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


async def test_settings_reach_the_engine_and_keys_never_do(project: Path, tmp_path: Path) -> None:
    secret = "sk-never-log-this"
    client = await start_client(project, "visual_studio_code", tmp_path, Recorder(),
                                init_options={"mode": "llm", "forks": 5, "apiKey": secret})
    try:
        result = await run(client, "conductor.explore", {"goal": "Say hello"})
        await wait_for(lambda: any(f"explore {result['plan_id']} finished" in m.message for m in client.messages),
                       what="explore finished")
        log = (tmp_path / "engine.log").read_text()
        assert '"mode": "llm"' in log and '"forks": "5"' in log
        assert all(secret not in m.message for m in [*client.log_messages, *client.messages])
        assert secret not in log
    finally:
        await client.shutdown_session()
        await client.stop()
