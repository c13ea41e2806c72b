"""Hover, completion, code actions, document symbols and code lenses against the real server."""

from __future__ import annotations

import json
from pathlib import Path

from lsprotocol import types as lsp

from tests.lsp.helpers import codes, dump, open_doc, task, task_path, wait_for


def doc_id(uri: str) -> lsp.TextDocumentIdentifier:
    return lsp.TextDocumentIdentifier(uri=uri)


def pos(line: int, character: int) -> lsp.Position:
    return lsp.Position(line=line, character=character)


def value_of(contents: object) -> str:
    return contents.value if isinstance(contents, lsp.MarkupContent) else str(contents)


async def hover(client, uri: str, line: int, character: int) -> str | None:
    result = await client.text_document_hover_async(lsp.HoverParams(text_document=doc_id(uri),
                                                                    position=pos(line, character)))
    return value_of(result.contents) if result else None


async def test_hover_policy_key_shows_schema_and_origin(client, project: Path) -> None:
    policy = project / ".conductor" / "policy.yaml"
    uri = open_doc(client, policy)
    lines = policy.read_text(encoding="utf-8").splitlines()
    line = lines.index("  max_diff_lines: 400")
    text = await hover(client, uri, line, 4)
    assert "**`max_diff_lines`** — integer (≥ 0, ≤ 100000000)" in text
    assert "Most lines (added + removed)" in text
    assert "max_diff_lines: 500" in text  # the schema's example
    assert "**Effective value:** `400` — from project .conductor/policy.yaml:" + str(line + 1) in text
    # a key the file does not set still shows where the effective value comes from: the defaults
    text = await hover(client, uri, lines.index("behavior:"), 2)
    assert "`max_repairs`: `2` — default" in text
    # protected patterns list every effective pattern with its line
    text = await hover(client, uri, lines.index('    - "migrations/*"'), 8)
    assert '`"migrations/*"` — project .conductor/policy.yaml:6' in text


async def test_hover_task_keys_enum_and_step(client, project: Path) -> None:
    path = task_path(project)
    uri = open_doc(client, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    level = next(i for i, s in enumerate(lines) if '"level"' in s)
    text = await hover(client, uri, level, lines[level].index('"level"') + 2)
    assert "Allowed values: `\"high\"`, `\"medium\"`, `\"low\"`" in text
    # $ref resolved: the confidence object's own description
    conf = next(i for i, s in enumerate(lines) if '"confidence"' in s)
    assert "How likely the step is to succeed" in await hover(client, uri, conf, lines[conf].index('"confidence"') + 2)
    # on the step id: the engine's explanation (the scripted engine answers)
    task_id = next(i for i, s in enumerate(lines) if '"task_id"' in s)
    text = await hover(client, uri, task_id, lines[task_id].index("step_001") + 2)
    assert "EXPLAINED step_001" in text


async def test_hover_step_without_engine_uses_task_file(project: Path, tmp_path: Path) -> None:
    from tests.lsp.conftest import Recorder, server_env, start_client

    rec = Recorder()
    env = server_env(tmp_path, engine="tests.lsp.no_such_engine")
    client = await start_client(project, "neovim", tmp_path, rec, env=env)
    try:
        path = task_path(project)
        uri = open_doc(client, path)
        lines = path.read_text(encoding="utf-8").splitlines()
        task_id = next(i for i, s in enumerate(lines) if '"task_id"' in s)
        text = await hover(client, uri, task_id, lines[task_id].index("step_001") + 2)
        assert "### step_001 — Add hello.py" in text
        assert "Create hello.py that prints Hello." in text
        assert "**Allowed files:** `hello.py`" in text
        assert "| history | 0.9 | 0.4 | 4 of 5 similar steps succeeded |" in text
        plan = project / ".conductor" / "plans" / "p1" / "plan.json"
        plan_uri = open_doc(client, plan)
        plan_lines = plan.read_text(encoding="utf-8").splitlines()
        step2 = next(i for i, s in enumerate(plan_lines) if '"step_002"' in s)
        text = await hover(client, plan_uri, step2, plan_lines[step2].index("step_002") + 2)
        assert "step_002 — Add tests" in text and "Depends on" in text
    finally:
        await client.shutdown_session()
        await client.stop()


async def complete(client, uri: str, line: int, character: int) -> list[lsp.CompletionItem]:
    result = await client.text_document_completion_async(lsp.CompletionParams(
        text_document=doc_id(uri), position=pos(line, character)))
    items = result.items if isinstance(result, lsp.CompletionList) else result
    return list(items or [])


async def test_completion_of_keys_blocks_and_enums(client, project: Path) -> None:
    snippets = client.caps_name != "emacs"
    policy = project / ".conductor" / "policy.yaml"
    uri = open_doc(client, policy, "behavior:\n  max_diff_lines: 10\n  \nfi")
    items = {i.label: i for i in await complete(client, uri, 3, 2)}
    assert set(items) == {"global_constraints", "file_rules", "verification"}  # behavior is present
    block = items["file_rules"]
    if snippets:
        assert block.insert_text_format == lsp.InsertTextFormat.Snippet
        assert "protected_patterns:" in block.text_edit.new_text
        assert isinstance(block.documentation, lsp.MarkupContent)
    else:
        assert block.insert_text_format == lsp.InsertTextFormat.PlainText
        assert isinstance(block.documentation, str)
    inner = {i.label for i in await complete(client, uri, 2, 2)}
    assert "max_diff_lines" not in inner and {"timeout_seconds", "approval_below", "allow_loosen"} <= inner
    # a verification command item inside the list: its keys
    uri2 = open_doc(client, project / "x.plan.yaml", "goal: g\nsteps:\n  - id: step_001\n    ")
    keys = {i.label for i in await complete(client, uri2, 3, 4)}
    assert {"title", "instruction", "allowed_files"} <= keys and "id" not in keys
    # enum values of a task's confidence level (JSON)
    path = task_path(project)
    text = path.read_text(encoding="utf-8").replace('"level": "high"', '"level": ""')
    task_uri = open_doc(client, path, text)
    line = next(i for i, s in enumerate(text.splitlines()) if '"level"' in s)
    values = {i.label: i for i in await complete(client, task_uri, line, text.splitlines()[line].index('""') + 1)}
    assert set(values) == {"high", "medium", "low"}
    assert values["low"].text_edit.new_text == '"low"'


async def test_completion_of_allowed_files_and_globs(client, project: Path) -> None:
    path = task_path(project)
    text = path.read_text(encoding="utf-8").replace('"allowed_files": [\n    "hello.py"\n  ]',
                                                     '"allowed_files": [\n    "src/"\n  ]')
    uri = open_doc(client, path, text)
    line = text.splitlines().index('    "src/"')
    labels = {i.label for i in await complete(client, uri, line, 8)}
    assert "src/app.py" in labels and "src/**" in labels
    assert not any(label.startswith(".conductor") for label in labels)
    policy = project / ".conductor" / "policy.yaml"
    policy_text = "file_rules:\n  protected_patterns:\n    - \n"
    puri = open_doc(client, policy, policy_text)
    globs = {i.label for i in await complete(client, puri, 2, 6)}
    assert {"*.lock", "*.py", "*.sql", "migrations/**", "hello.py"} <= globs


async def test_quick_fixes(client, project: Path) -> None:
    policy = project / ".conductor" / "policy.yaml"
    uri = open_doc(client, policy, "file_rules:\n  protected_paterns: []\n")
    await wait_for(lambda: client.diagnostics.get(uri), what="diagnostics")
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=doc_id(uri), range=lsp.Range(start=pos(1, 3), end=pos(1, 3)),
        context=lsp.CodeActionContext(diagnostics=list(client.diagnostics[uri]))))
    (rename,) = [a for a in actions if getattr(a, 'kind', None) == lsp.CodeActionKind.QuickFix]
    assert rename.title == "Rename `protected_paterns` to `protected_patterns`" and rename.is_preferred
    (edit,) = rename.edit.changes[uri]
    assert edit.new_text == "protected_patterns" and edit.range.start == pos(1, 2)

    path = task_path(project)
    body = task(score=0.3, level="high", allowed=["src/../hello.py"])
    body["instruction"] = "Edited after writing"  # checksum no longer matches
    uri = open_doc(client, path, dump(body))
    diags = await wait_for(lambda: client.diagnostics.get(uri), what="task diagnostics")
    assert codes(diags) == ["task/checksum-mismatch", "task/confidence-mismatch", "task/path-parent"]
    lines = dump(body).splitlines()
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=doc_id(uri), range=lsp.Range(start=pos(0, 0), end=pos(len(lines), 0)),
        context=lsp.CodeActionContext(diagnostics=[])))
    fixes = {a.title: a for a in actions if getattr(a, 'kind', None) == lsp.CodeActionKind.QuickFix}
    level = fixes["Set confidence level to `low` (matches the score)"]
    assert level.edit.changes[uri][0].new_text == '"low"' and level.is_preferred
    parent = fixes["Rewrite `src/../hello.py` as `hello.py`"]
    assert parent.edit.changes[uri][0].new_text == '"hello.py"'
    (checksum,) = [a for t, a in fixes.items() if t.startswith("Recompute checksum")]
    assert checksum.is_preferred is False and "re-signs" in checksum.title and "tampered" in checksum.title
    assert checksum.edit.changes[uri][0].new_text.startswith('"sha256:')


async def test_source_actions(client, project: Path) -> None:
    path = task_path(project)
    text = dump(task(allowed=["hello.py", "src/app.py"]))
    uri = open_doc(client, path, text)
    line = text.splitlines().index('    "src/app.py"')
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=doc_id(uri), range=lsp.Range(start=pos(line, 5), end=pos(line, 5)),
        context=lsp.CodeActionContext(diagnostics=[], only=[lsp.CodeActionKind.Source])))
    titles = {a.title: a for a in actions}
    protect = titles["Add protected pattern `src/app.py` to .conductor/policy.yaml"]
    policy_uri = (project / ".conductor" / "policy.yaml").as_uri()
    (edit,) = protect.edit.changes[policy_uri]
    assert edit.new_text == "    - src/app.py\n" and edit.range.start.line == 6
    explain = titles["Explain this step (step_001)"]
    # lsprotocol's client-side hook reads any action that has a `command` as a bare Command
    # (stringifying the nested command); what the server sent is a CodeAction running it
    assert "conductor.explain" in str(explain.command) and "step_001" in str(explain)


async def test_document_symbols(client, project: Path) -> None:
    uri = open_doc(client, project / ".conductor" / "policy.yaml")
    symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(text_document=doc_id(uri)))
    if client.caps_name == "emacs" or isinstance(symbols[0], lsp.DocumentSymbol):
        names = [s.name for s in symbols]
        assert names == ["global_constraints", "file_rules", "behavior", "verification"]
        behavior = symbols[2]
        assert [c.name for c in behavior.children] == ["max_diff_lines", "timeout_seconds"]
        assert behavior.range.start.line == 6 and behavior.range.end.line == 8
    plan = project / ".conductor" / "plans" / "p1" / "plan.json"
    plan_uri = open_doc(client, plan)
    symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(text_document=doc_id(plan_uri)))
    steps = next(s for s in symbols if s.name == "steps")
    assert [(c.name, c.detail) for c in steps.children] == [("step_001", "Add hello.py"), ("step_002", "Add tests")]


async def test_code_lenses(client, project: Path) -> None:
    plan = project / ".conductor" / "plans" / "p1" / "plan.json"
    uri = open_doc(client, plan)
    lenses = await client.text_document_code_lens_async(lsp.CodeLensParams(text_document=doc_id(uri)))
    lines = plan.read_text(encoding="utf-8").splitlines()
    by_line: dict[int, list[str]] = {}
    for lens in lenses:
        by_line.setdefault(lens.range.start.line, []).append(lens.command.title)
    step1 = next(i for i, s in enumerate(lines) if '"step_001"' in s and '"id"' in s)
    step2 = next(i for i, s in enumerate(lines) if '"step_002"' in s and '"id"' in s)
    assert by_line[step1] == ["▶ Hand off (pending)", "Explain"]
    assert by_line[step2] == ["▶ Hand off", "✓ Approve", "Explain"]  # estimated 0.4: LOW
    approve = next(lens for lens in lenses if lens.command.title == "✓ Approve")
    assert approve.command.command == "conductor.approve"
    assert list(approve.command.arguments) == [{"step_id": "step_002", "plan_id": "p1", "decision": "approve"}]
    # a task with a result: Open result
    path = task_path(project)
    (path.parent / "step_001.result.json").write_text(dump({"contract_version": "1.0", "task_id": "step_001",
                                                            "status": "completed"}), encoding="utf-8")
    task_uri = open_doc(client, path)
    lenses = await client.text_document_code_lens_async(lsp.CodeLensParams(text_document=doc_id(task_uri)))
    titles = [lens.command.title for lens in lenses]
    assert titles[-1] == "Open result" and "Explain" in titles
    opened = lenses[-1].command.arguments[0]
    result = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="conductor.openResult", arguments=[opened]))
    assert result["path"].endswith("step_001.result.json")
    if client.caps_name != "emacs":
        assert client.shown_documents and client.shown_documents[-1].uri.endswith("step_001.result.json")
    _ = json
