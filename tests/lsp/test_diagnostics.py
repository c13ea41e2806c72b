"""Diagnostics end to end on an engine-built project: push/pull, code descriptions, encodings,
cross-file (a task judged by the policy being edited), agents' disk writes, hostile files."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import client_capabilities

from conductor.validation import validate_document
from tests.lsp.conftest import Recorder, start_client
from tests.lsp.helpers import (
    codes,
    dump,
    fork_dir,
    line_of,
    load,
    notify,
    open_doc,
    pending_task,
    plan_document,
    replace_all,
    wait_for,
)
from tests.support.fixtures import Built

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


async def test_policy_change_rechecks_open_tasks(client, built: Built) -> None:
    path = pending_task(built.root, built.plan_id)  # step_004, allowed_files: four.txt
    task_uri = open_doc(client, path)
    await wait_for(lambda: task_uri in client.diagnostics, what="task diagnostics")
    assert codes(client.diagnostics[task_uri]) == []
    policy = built.root / ".conductor" / "policy.yaml"
    policy_uri = open_doc(client, policy)
    text = policy.read_text(encoding="utf-8").replace('    - "*.lock"\n', '    - "*.lock"\n    - "four.*"\n')
    replace_all(client, policy_uri, text, 2)  # unsaved: the buffer counts
    diags = await wait_for(lambda: [d for d in client.diagnostics.get(task_uri, []) if d.code == "task/path-protected"],
                           what="task/path-protected after the policy edit")
    (diag,) = diags
    assert diag.range.start.line == line_of(path, '"four.txt"') and "four.*" in diag.message
    # closing the unsaved policy buffer falls back to the file on disk: the protection is gone
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(
        text_document=lsp.TextDocumentIdentifier(uri=policy_uri)))
    await wait_for(lambda: not client.diagnostics.get(task_uri), what="task clean again")


async def test_policy_saved_on_disk_rechecks_open_tasks(client, built: Built, recorder: Recorder) -> None:
    path = pending_task(built.root, built.plan_id)
    task_uri = open_doc(client, path)
    await wait_for(lambda: task_uri in client.diagnostics, what="task diagnostics")
    policy = built.root / ".conductor" / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace('- "*.lock"', '- "*.lock"\n    - "four.txt"'),
                      encoding="utf-8")
    notify(client, bool(recorder.registrations), (policy, lsp.FileChangeType.Changed))
    await wait_for(lambda: codes(client.diagnostics.get(task_uri)) == ["task/path-protected"],
                   what="task/path-protected from the policy on disk")


async def test_agent_writes_a_result_file(client, built: Built, recorder: Recorder) -> None:
    assert bool(recorder.registrations) == (client.caps_name in ("visual_studio_code", "emacs"))
    claimed = fork_dir(built.root, built.plan_id, "in_progress")
    claimed.mkdir(parents=True, exist_ok=True)
    result = claimed / "step_004.result.json"
    result.write_text(dump({"contract_version": "1.0", "task_id": "step_004", "status": "failed",
                            "files_changed": ["../outside.py"]}), encoding="utf-8")
    notify(client, bool(recorder.registrations), (result, lsp.FileChangeType.Created))
    uri = result.as_uri()
    diags = await wait_for(lambda: client.diagnostics.get(uri), timeout=10, what="diagnostics of the agent's file")
    assert codes(diags) == ["result/missing-error", "result/path-escapes"]
    result.unlink()
    notify(client, bool(recorder.registrations), (result, lsp.FileChangeType.Deleted))
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
        path = pending_task(project, only_plan_with_pending(project))
        task_uri = open_doc(client, path, dump({**load(path), "allowed_files": ["../x.py"]}))
        await wait_for(lambda: client.diagnostics.get(task_uri), what="task diagnostics")
        assert list(client.diagnostics.get(policy_uri, [None])) == []
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_workspace_configuration_turns_diagnostics_off(project: Path, tmp_path: Path) -> None:
    client = await start_client(project, "neovim", tmp_path, Recorder(),
                                configuration={"conductor": {"diagnostics": {"task": False}}})
    try:
        path = pending_task(project, only_plan_with_pending(project))
        task_uri = open_doc(client, path, dump({**load(path), "allowed_files": ["../x.py"]}))
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
        plan = plan_document(project, only_plan_with_pending(project))
        assert uri in by_uri and plan.as_uri() in by_uri
        assert [d.code for d in by_uri[plan.as_uri()].items] == ["step/waiting-approval"]  # step_003 waits
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
async def test_hostile_documents_get_one_error_and_no_hover(project: Path, tmp_path: Path, text: str) -> None:
    rec = Recorder()
    client = await start_client(project, "visual_studio_code", tmp_path, rec)
    try:
        uri = open_doc(client, project / ".conductor" / "policy.yaml", text)
        diags = await wait_for(lambda: client.diagnostics.get(uri), timeout=30, what="diagnostics")
        assert len(diags) == 1 and diags[0].severity == lsp.DiagnosticSeverity.Error
        hover = await asyncio.wait_for(client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=0, character=0))), 30)
        assert hover is None
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_plan_and_task_and_config_files(client, built: Built) -> None:
    project = built.root
    plan = plan_document(project, built.plan_id)
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


def only_plan_with_pending(root: Path) -> str:
    """The plan whose step_004 is still pending (the mixed plan of the built project)."""
    (found,) = [p.parents[2].name.removeprefix("plan_")
                for p in (root / ".conductor" / "handoff").glob("plan_*/fork_main/pending/step_004.task.json")]
    return found


async def test_files_that_are_not_files_get_a_diagnostic_and_never_a_hang(client, built: Built,
                                                                            recorder: Recorder) -> None:
    """Issue 13: a FIFO named like a result blocked the server for good; a result symlinked to
    /dev/zero was read until memory ran out. Now: lstat first, a diagnostic, nothing read."""
    folder = fork_dir(built.root, built.plan_id, "in_progress")
    folder.mkdir(parents=True, exist_ok=True)
    fifo = folder / "step_004.result.json"
    os.mkfifo(fifo)
    zero = folder / "step_003.result.json"
    zero.symlink_to("/dev/zero")
    notify(client, bool(recorder.registrations), (fifo, lsp.FileChangeType.Created), (zero, lsp.FileChangeType.Created))
    for path, what in ((fifo, "named pipe"), (zero, "symbolic link")):
        diags = await wait_for(lambda p=path: client.diagnostics.get(p.as_uri()), what=f"diagnostic of the {what}")
        (diag,) = diags
        assert diag.code == "file/not-regular" and what in diag.message, diag.message
    opened = open_doc(client, fifo, "")  # the editor opening it (with nothing read) is answered too
    policy_uri = open_doc(client, built.root / ".conductor" / "policy.yaml")
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=policy_uri), position=lsp.Position(line=6, character=3)))
    assert hover is not None  # the server is not stuck on either file
    assert opened


async def test_hover_is_answered_while_a_huge_policy_is_validated_again(built: Built, tmp_path: Path) -> None:
    """Issue 13: 100,000 short constraints (under the 2 MiB limit) froze hovers for seconds. The
    re-validation now runs in a worker thread; a hover is answered from the last finished analysis
    before the new version's diagnostics arrive."""
    rec = Recorder()
    client = await start_client(built.root, "visual_studio_code", tmp_path, rec)
    try:
        policy = built.root / ".conductor" / "policy.yaml"
        head = policy.read_text(encoding="utf-8").replace("global_constraints:\n", "global_constraints:\n" + "".join(
            f"  - c{i}\n" for i in range(100_000)))
        assert len(head.encode()) < 2 * 1024 * 1024
        uri = open_doc(client, policy, head)
        await wait_for(lambda: uri in client.diagnostics, timeout=120, what="diagnostics of the huge policy")
        published: list[float] = []
        before = len(client.diagnostics.get(uri, []))
        replace_all(client, uri, head + "sneaky: 1\n", 2)  # one unknown key: version 2 has a diagnostic
        asked = asyncio.get_running_loop().time()
        line = line_of(head, "max_diff_lines")
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(line=line, character=4)))
        answered = asyncio.get_running_loop().time()
        assert hover is not None and "max_diff_lines" in hover.contents.value
        assert "**Effective value:** `500`" in hover.contents.value
        await wait_for(lambda: len(client.diagnostics.get(uri, [])) > before, timeout=120,
                       what="diagnostics of version 2")
        published.append(asyncio.get_running_loop().time())
        assert answered < published[0], (answered - asked, published[0] - asked)
        assert codes(client.diagnostics[uri]) == ["policy/unknown-key"]
    finally:
        await client.shutdown_session()
        await client.stop()
