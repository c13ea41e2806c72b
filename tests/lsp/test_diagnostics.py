"""Diagnostics end to end: push/pull, code descriptions, encodings, cross-file, agents' disk writes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import client_capabilities

from conductor.validation import validate_document
from tests.lsp.conftest import Recorder, start_client
from tests.lsp.helpers import codes, dump, fork_dir, open_doc, replace_all, task, task_path, wait_for

BROKEN_POLICY = """\
global_constraints:
  - Keep it small
file_rules:
  protected_paterns:
    - "*.lock"
behavior:
  max_diff_lines: -5
  timeout_seconds: "soon"
"""


async def test_policy_diagnostics_match_cli(client, project: Path) -> None:
    policy = project / ".conductor" / "policy.yaml"
    policy.write_text(BROKEN_POLICY, encoding="utf-8")
    uri = open_doc(client, policy)
    diags = await wait_for(lambda: client.diagnostics.get(uri), what="policy diagnostics")
    _, expected = validate_document(BROKEN_POLICY, "policy", path=policy)
    assert [(d.code, d.range.start.line, d.message) for d in diags] == [
        (e.code, e.range.start_line, e.message) for e in expected]
    assert codes(diags) == ["policy/range", "policy/type", "policy/unknown-key"]
    unknown = next(d for d in diags if d.code == "policy/unknown-key")
    assert unknown.range.start == lsp.Position(line=3, character=2)
    assert unknown.range.end == lsp.Position(line=3, character=19)
    assert unknown.source == "conductor"
    assert unknown.severity == lsp.DiagnosticSeverity.Error
    if client.caps_name != "emacs":  # Emacs 29 declares codeDescriptionSupport: false
        assert unknown.code_description.href == next(e.docs_url for e in expected if e.code == "policy/unknown-key")
    else:
        assert unknown.code_description is None


@pytest.mark.parametrize("caps_name", ["visual_studio_code", "neovim", "emacs"])
async def test_positions_follow_negotiated_encoding(caps_name: str, project: Path, tmp_path: Path) -> None:
    rec = Recorder()
    client = await start_client(project, caps_name, tmp_path, rec)
    try:
        encoding = client.init_result.capabilities.position_encoding or "utf-16"
        text = 'global_constraints: ["😀 日本語", 5]\n'
        uri = open_doc(client, project / ".conductor" / "policy.yaml", text)
        diags = await wait_for(lambda: client.diagnostics.get(uri), what="diagnostics")
        (diag,) = diags
        assert diag.code == "policy/type"
        prefix = text[: text.index("5]")]
        expected = {"utf-16": len(prefix.encode("utf-16-le")) // 2, "utf-8": len(prefix.encode()),
                    "utf-32": len(prefix)}[encoding]
        assert diag.range.start.character == expected
        assert diag.range.end.character == expected + 1
        # and positions coming in are converted too: hover on the key after the emoji line
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=0, character=expected)))
        assert hover is not None and "global_constraints" in hover.contents.value
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_policy_change_rechecks_open_tasks(client, project: Path) -> None:
    path = task_path(project)
    path.write_text(dump(task(allowed=["hello.py", "src/app.py"])), encoding="utf-8")
    task_uri = open_doc(client, path)
    await wait_for(lambda: task_uri in client.diagnostics, what="task diagnostics")
    assert codes(client.diagnostics[task_uri]) == []
    policy = project / ".conductor" / "policy.yaml"
    policy_uri = open_doc(client, policy)
    text = policy.read_text(encoding="utf-8").replace('    - "migrations/*"\n', '    - "migrations/*"\n    - "src/*"\n')
    replace_all(client, policy_uri, text, 2)
    diags = await wait_for(lambda: [d for d in client.diagnostics.get(task_uri, []) if d.code == "task/path-protected"],
                           what="task/path-protected after the policy edit")
    (diag,) = diags
    line = path.read_text(encoding="utf-8").splitlines().index('    "src/app.py"')
    assert diag.range.start.line == line
    assert "src/*" in diag.message
    # closing the unsaved policy buffer falls back to the file on disk: the protection is gone
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(
        text_document=lsp.TextDocumentIdentifier(uri=policy_uri)))
    await wait_for(lambda: not client.diagnostics.get(task_uri), what="task clean again")


async def test_policy_saved_on_disk_rechecks_open_tasks(client, project: Path, recorder: Recorder) -> None:
    path = task_path(project)
    path.write_text(dump(task(allowed=["src/app.py"])), encoding="utf-8")
    task_uri = open_doc(client, path)
    await wait_for(lambda: task_uri in client.diagnostics, what="task diagnostics")
    policy = project / ".conductor" / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace('- "*.lock"', '- "*.lock"\n    - "src/**"'),
                      encoding="utf-8")
    notify_disk_change(client, recorder, policy)
    await wait_for(lambda: codes(client.diagnostics.get(task_uri)) == ["task/path-protected"],
                   what="task/path-protected from the policy on disk")


def notify_disk_change(client, recorder: Recorder, path: Path, kind=lsp.FileChangeType.Changed) -> None:
    """What the editor does for files it watches; without registration the server's own watcher sees it."""
    if recorder.registrations:
        client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(
            changes=[lsp.FileEvent(uri=path.as_uri(), type=kind)]))


async def test_agent_writes_a_result_file(client, project: Path, recorder: Recorder) -> None:
    assert bool(recorder.registrations) == (client.caps_name in ("visual_studio_code", "emacs"))
    claimed = fork_dir(project, "in_progress")
    result = claimed / "step_001.result.json"
    result.write_text(dump({"contract_version": "1.0", "task_id": "step_001", "status": "failed",
                            "files_changed": ["../outside.py"]}), encoding="utf-8")
    notify_disk_change(client, recorder, result, lsp.FileChangeType.Created)
    uri = result.as_uri()
    diags = await wait_for(lambda: client.diagnostics.get(uri), timeout=10, what="diagnostics of the agent's file")
    assert codes(diags) == ["result/missing-error", "result/path-escapes"]
    result.unlink()
    notify_disk_change(client, recorder, result, lsp.FileChangeType.Deleted)
    await wait_for(lambda: list(client.diagnostics.get(uri, [None])) == [], what="diagnostics cleared after delete")


async def test_burst_of_edits_keeps_latest_version(client, project: Path) -> None:
    policy = project / ".conductor" / "policy.yaml"
    lines = [f"  - constraint {i}" for i in range(3000)]
    base = "global_constraints:\n" + "\n".join(lines) + "\n"
    uri = open_doc(client, policy, base)
    await wait_for(lambda: uri in client.diagnostics, what="first diagnostics")
    for version in range(2, 22):
        tail = "behavior:\n  max_diff_lines: oops\n" if version % 2 else "sneaky: 1\n"
        if version == 21:
            tail += "  timeout_seconds: -1\n"
        replace_all(client, uri, base + tail, version)
    # only the last version has both errors; nothing older may arrive after it
    final = ["policy/range", "policy/type"]
    await wait_for(lambda: codes(client.diagnostics.get(uri)) == final, what="latest diagnostics")
    await asyncio.sleep(0.3)
    assert codes(client.diagnostics.get(uri)) == final


async def test_settings_turn_diagnostics_off_per_kind(project: Path, tmp_path: Path) -> None:
    rec = Recorder()
    client = await start_client(project, "visual_studio_code", tmp_path, rec,
                                init_options={"diagnostics": {"policy": False}})
    try:
        policy_uri = open_doc(client, project / ".conductor" / "policy.yaml", "nope: 1\n")
        path = task_path(project)
        path.write_text(dump(task(allowed=["../x.py"])), encoding="utf-8")
        task_uri = open_doc(client, path)
        await wait_for(lambda: client.diagnostics.get(task_uri), what="task diagnostics")
        assert list(client.diagnostics.get(policy_uri, [None])) == []
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_workspace_configuration_turns_diagnostics_off(project: Path, tmp_path: Path) -> None:
    client = await start_client(project, "neovim", tmp_path, Recorder(),
                                configuration={"conductor": {"diagnostics": {"task": False}}})
    try:
        path = task_path(project)
        path.write_text(dump(task(allowed=["../x.py"])), encoding="utf-8")
        task_uri = open_doc(client, path)
        policy_uri = open_doc(client, project / ".conductor" / "policy.yaml", "nope: 1\n")
        await wait_for(lambda: client.diagnostics.get(policy_uri), what="policy diagnostics")
        await wait_for(lambda: task_uri in client.diagnostics, what="task published")
        assert list(client.diagnostics[task_uri]) == []
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_pull_diagnostics(project: Path, tmp_path: Path) -> None:
    caps = client_capabilities("visual_studio_code")
    caps.text_document.diagnostic = lsp.DiagnosticClientCapabilities(dynamic_registration=False)
    caps.workspace.diagnostics = lsp.DiagnosticWorkspaceClientCapabilities(refresh_support=True)
    rec = Recorder()
    client = await start_client(project, "visual_studio_code", tmp_path, rec, capabilities=caps)
    try:
        assert client.init_result.capabilities.diagnostic_provider is not None
        uri = open_doc(client, project / ".conductor" / "policy.yaml", "behaviour: {}\n")
        report = await client.text_document_diagnostic_async(lsp.DocumentDiagnosticParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri)))
        assert [d.code for d in report.items] == ["policy/unknown-key"]
        workspace = await client.workspace_diagnostic_async(lsp.WorkspaceDiagnosticParams(previous_result_ids=[]))
        by_uri = {item.uri: item for item in workspace.items}
        assert uri in by_uri and (project / ".conductor" / "plans" / "p1" / "plan.json").as_uri() in by_uri
        await asyncio.sleep(0.2)
        assert uri not in client.diagnostics  # pull clients get no pushes
        # a policy change that affects other files asks the client to pull again
        before = client.diagnostic_refresh_count
        replace_all(client, uri, "behavior: {}\n", 2)
        await wait_for(lambda: client.diagnostic_refresh_count > before, what="workspace/diagnostic/refresh")
    finally:
        await client.shutdown_session()
        await client.stop()


@pytest.mark.parametrize("text", [
    "a" * (10 * 1024 * 1024),
    "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9)),
    "[" * 10000,
], ids=["10MB", "alias-bomb", "deep"])
async def test_hostile_documents_answered_quickly(project: Path, tmp_path: Path, text: str) -> None:
    rec = Recorder()
    client = await start_client(project, "visual_studio_code", tmp_path, rec)
    try:
        started = time.perf_counter()
        uri = open_doc(client, project / ".conductor" / "policy.yaml", text)
        diags = await wait_for(lambda: client.diagnostics.get(uri), timeout=10, what="diagnostics")
        assert len(diags) == 1 and diags[0].severity == lsp.DiagnosticSeverity.Error
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=0, character=0)))
        assert hover is None
        assert time.perf_counter() - started < 8
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_plan_and_task_and_config_files(client, project: Path) -> None:
    plan = project / ".conductor" / "plans" / "p1" / "plan.json"
    data = json.loads(plan.read_text(encoding="utf-8"))
    data["steps"][1]["depends_on"] = ["step_009"]
    plan_uri = open_doc(client, plan, dump(data))
    config_uri = open_doc(client, project / ".conductor" / "config.yaml", "mode: turbo\n")
    other = project / "work.plan.json"
    other_uri = open_doc(client, other, "{}")
    await wait_for(lambda: client.diagnostics.get(plan_uri) and client.diagnostics.get(config_uri)
                   and client.diagnostics.get(other_uri), what="diagnostics of three kinds")
    assert "plan/unknown-dependency" in codes(client.diagnostics[plan_uri])
    assert codes(client.diagnostics[config_uri]) == ["config/enum"]
    assert codes(client.diagnostics[other_uri]) == ["plan/missing-key", "plan/missing-key"]
