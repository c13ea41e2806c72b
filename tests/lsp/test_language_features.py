"""Hover, completion, code actions, document symbols and code lenses on a project the engine built.

The project has two plans with the same step ids: a halted one (step_001 failed, step_002
rejected, step_003 waiting for approval, step_004 handed off) and a completed one. Each plan
document shows its own plan's steps, never the other's.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from tests.lsp.helpers import (
    codes,
    dump,
    line_of,
    load,
    open_doc,
    pending_task,
    plan_document,
    task_file,
    wait_for,
)
from tests.support.fixtures import Built


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
    line = line_of(policy, "  max_diff_lines: 500")
    text = await hover(client, uri, line, 4)
    assert "**`max_diff_lines`** — integer (≥ 0, ≤ 100000000)" in text
    assert "Most lines (added + removed)" in text
    assert "max_diff_lines: 500" in text  # the schema's example
    assert f"**Effective value:** `500` — from project .conductor/policy.yaml:{line + 1}" in text
    # a key the file does not set still shows where the effective value comes from: the defaults
    text = await hover(client, uri, line_of(policy, "behavior:"), 2)
    assert "`fork_below`: `0.0` — default" in text and "`max_repairs`: `0` — project" in text
    # protected patterns list every effective pattern with its line
    lock = line_of(policy, '    - "*.lock"')
    text = await hover(client, uri, lock, 8)
    assert f'`"*.lock"` — project .conductor/policy.yaml:{lock + 1}' in text


async def test_hover_on_a_task_shows_the_engines_explanation(client, built: Built) -> None:
    path = pending_task(built.root, built.plan_id)
    uri = open_doc(client, path)
    level = line_of(path, '"level"')
    lines = path.read_text(encoding="utf-8").splitlines()
    text = await hover(client, uri, level, lines[level].index('"level"') + 2)
    assert "Allowed values: `\"high\"`, `\"medium\"`, `\"low\"`" in text
    conf = line_of(path, '"confidence"')  # $ref resolved: the confidence object's own description
    assert "How likely the step is to succeed" in await hover(client, uri, conf, lines[conf].index('"confidence"') + 2)
    task_id = line_of(path, '"task_id"')
    text = await hover(client, uri, task_id, lines[task_id].index("step_004") + 2)
    assert text.startswith("# step_004: A step nobody has taken yet") and "in_progress" in text


async def test_hover_on_a_step_no_journal_knows_shows_the_document_itself(client, built: Built) -> None:
    """A task of a plan this project has no journal for (copied from elsewhere): its own words."""
    body = {**load(pending_task(built.root, built.plan_id)), "plan_id": "elsewhere"}
    path = built.root / "drafts" / "step_004.task.json"
    uri = open_doc(client, path, dump(body))
    text = await hover(client, uri, line_of(dump(body), '"task_id"'), 16)
    assert text.startswith("### step_004 — A step nobody has taken yet")
    assert "write four.txt: 4" in text and "**Allowed files:** `four.txt`" in text
    assert "| history | 0.7 |" in text  # the confidence factors the engine put in the task


async def test_hover_on_plan_steps_explains_the_steps_of_that_plan(client, built: Built) -> None:
    mixed, completed = plan_document(built.root, built.plan_id), plan_document(built.root, built.other_plan_id or "")
    mixed_uri, completed_uri = open_doc(client, mixed), open_doc(client, completed)
    line = line_of(mixed, '"id": "step_001"')
    text = await hover(client, mixed_uri, line, mixed.read_text().splitlines()[line].index("step_001") + 2)
    assert text.startswith("# step_001: A step whose agent fails") and "failed" in text
    line = line_of(completed, '"id": "step_001"')
    text = await hover(client, completed_uri, line, completed.read_text().splitlines()[line].index("step_001") + 2)
    assert text.startswith("# step_001: Add the greeting module") and "completed" in text


async def complete(client, uri: str, line: int, character: int) -> list[lsp.CompletionItem]:
    result = await client.text_document_completion_async(lsp.CompletionParams(
        text_document=doc_id(uri), position=pos(line, character)))
    items = result.items if isinstance(result, lsp.CompletionList) else result
    return list(items or [])


async def test_completion_of_keys_blocks_and_enums(client, built: Built) -> None:
    snippets = client.caps_name != "emacs"
    policy = built.root / ".conductor" / "policy.yaml"
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
    uri2 = open_doc(client, built.root / "x.plan.yaml", "goal: g\nsteps:\n  - id: step_001\n    ")
    keys = {i.label for i in await complete(client, uri2, 3, 4)}
    assert {"title", "instruction", "allowed_files"} <= keys and "id" not in keys
    # enum values of a task's confidence level (JSON)
    path = pending_task(built.root, built.plan_id)
    text = path.read_text(encoding="utf-8").replace('"level": "high"', '"level": ""')
    task_uri = open_doc(client, path, text)
    line = line_of(text, '"level"')
    values = {i.label: i for i in await complete(client, task_uri, line, text.splitlines()[line].index('""') + 1)}
    assert set(values) == {"high", "medium", "low"}
    assert values["low"].text_edit.new_text == '"low"'


async def test_completion_of_allowed_files_and_globs(client, built: Built) -> None:
    path = pending_task(built.root, built.plan_id)
    text = path.read_text(encoding="utf-8").replace('"four.txt"', '"tests/"')
    uri = open_doc(client, path, text)
    line = line_of(text, '"tests/"')
    labels = {i.label for i in await complete(client, uri, line, text.splitlines()[line].index("/") + 1)}
    assert "tests/test_hello.py" in labels  # a file the completed plan merged
    assert not any(label.startswith(".conductor") for label in labels)
    policy = built.root / ".conductor" / "policy.yaml"
    puri = open_doc(client, policy, "file_rules:\n  protected_patterns:\n    - \n")
    globs = {i.label for i in await complete(client, puri, 2, 6)}
    assert {"*.lock", "*.py", "*.md", "hello.py", "tests/**"} <= globs


async def test_quick_fixes(client, built: Built) -> None:
    policy = built.root / ".conductor" / "policy.yaml"
    uri = open_doc(client, policy, "file_rules:\n  protected_paterns: []\n")
    await wait_for(lambda: client.diagnostics.get(uri), what="diagnostics")
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=doc_id(uri), range=lsp.Range(start=pos(1, 3), end=pos(1, 3)),
        context=lsp.CodeActionContext(diagnostics=list(client.diagnostics[uri]))))
    (rename,) = [a for a in actions if getattr(a, 'kind', None) == lsp.CodeActionKind.QuickFix]
    assert rename.title == "Rename `protected_paterns` to `protected_patterns`" and rename.is_preferred
    (edit,) = rename.edit.changes[uri]
    assert edit.new_text == "protected_patterns" and edit.range.start == pos(1, 2)

    path = pending_task(built.root, built.plan_id)
    body = load(path)
    body["confidence"] = {**body["confidence"], "score": 0.3}  # level stays "high": below approval_below 0.75
    body["allowed_files"] = ["src/../four.txt"]
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
    parent = fixes["Rewrite `src/../four.txt` as `four.txt`"]
    assert parent.edit.changes[uri][0].new_text == '"four.txt"'
    (checksum,) = [a for t, a in fixes.items() if t.startswith("Recompute checksum")]
    assert checksum.is_preferred is False and "re-signs" in checksum.title and "tampered" in checksum.title
    assert checksum.edit.changes[uri][0].new_text.startswith('"sha256:')


async def test_source_actions(client, built: Built) -> None:
    path = pending_task(built.root, built.plan_id)
    text = dump({**load(path), "allowed_files": ["four.txt", "src/app.py"]})
    uri = open_doc(client, path, text)
    line = line_of(text, '"src/app.py"')
    actions = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=doc_id(uri), range=lsp.Range(start=pos(line, 5), end=pos(line, 5)),
        context=lsp.CodeActionContext(diagnostics=[], only=[lsp.CodeActionKind.Source])))
    titles = {a.title: a for a in actions}
    protect = titles["Add protected pattern `src/app.py` to .conductor/policy.yaml"]
    policy = built.root / ".conductor" / "policy.yaml"
    (edit,) = protect.edit.changes[policy.as_uri()]
    assert edit.new_text == "    - src/app.py\n" and edit.range.start.line == line_of(policy, '    - ".env"') + 1
    explain = titles["Explain this step (step_004)"]
    # lsprotocol's client-side hook reads any action that has a `command` as a bare Command
    # (stringifying the nested command); what the server sent is a CodeAction running it
    assert "conductor.explain" in str(explain.command) and "step_004" in str(explain)
    assert built.plan_id in str(explain)


async def test_document_symbols(client, built: Built) -> None:
    uri = open_doc(client, built.root / ".conductor" / "policy.yaml")
    symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(text_document=doc_id(uri)))
    if client.caps_name == "emacs" or isinstance(symbols[0], lsp.DocumentSymbol):
        names = [s.name for s in symbols]
        assert names == ["global_constraints", "file_rules", "behavior", "verification"]
        behavior = symbols[2]
        assert [c.name for c in behavior.children] == ["max_diff_lines", "max_files_changed", "timeout_seconds",
                                                       "max_repairs", "approval_below", "caution_below"]
    plan_uri = open_doc(client, plan_document(built.root, built.plan_id))
    symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(text_document=doc_id(plan_uri)))
    steps = next(s for s in symbols if s.name == "steps")
    assert [(c.name, c.detail) for c in steps.children] == [
        ("step_001", "A step whose agent fails"), ("step_002", "A risky step a person rejects"),
        ("step_003", "A risky step waiting for approval"), ("step_004", "A step nobody has taken yet")]


def lenses_by_line(lenses: list[lsp.CodeLens]) -> dict[int, list[str]]:
    by_line: dict[int, list[str]] = {}
    for lens in lenses:
        by_line.setdefault(lens.range.start.line, []).append(lens.command.title)
    return by_line


async def test_code_lenses_show_only_the_open_plans_steps(client, built: Built) -> None:
    """Issue 14: lenses matched step ids of every plan; two plans share step_001 and step_002 here."""
    mixed, completed = plan_document(built.root, built.plan_id), plan_document(built.root, built.other_plan_id or "")
    uri = open_doc(client, mixed)
    lenses = await client.text_document_code_lens_async(lsp.CodeLensParams(text_document=doc_id(uri)))
    by_line = lenses_by_line(lenses)
    assert by_line[line_of(mixed, '"id": "step_001"')] == ["▶ Hand off (failed)", "Explain", "Open result"]
    assert by_line[line_of(mixed, '"id": "step_002"')] == ["▶ Hand off (skipped)", "Explain"]
    assert by_line[line_of(mixed, '"id": "step_003"')] == ["▶ Hand off (waiting approval)", "✓ Approve", "Explain"]
    assert by_line[line_of(mixed, '"id": "step_004"')] == ["▶ Hand off (in progress)", "Explain"]
    approve = next(lens for lens in lenses if lens.command.title == "✓ Approve")
    assert approve.command.command == "conductor.approve"
    assert list(approve.command.arguments) == [{"step_id": "step_003", "plan_id": built.plan_id,
                                                "decision": "approve", "fork_id": "main"}]
    other = open_doc(client, completed)
    lenses = await client.text_document_code_lens_async(lsp.CodeLensParams(text_document=doc_id(other)))
    by_line = lenses_by_line(lenses)
    assert by_line[line_of(completed, '"id": "step_001"')] == ["▶ Hand off (completed)", "Explain", "Open result"]
    assert by_line[line_of(completed, '"id": "step_002"')] == ["▶ Hand off (completed)", "Explain", "Open result"]
    # the waiting step is a diagnostic on its own plan's document only
    waiting = await wait_for(lambda: [d for d in client.diagnostics.get(uri, []) if d.code == "step/waiting-approval"],
                             what="the waiting step's diagnostic")
    assert [d.range.start.line for d in waiting] == [line_of(mixed, '"id": "step_003"')]
    await wait_for(lambda: other in client.diagnostics, what="the completed plan's diagnostics")
    assert codes(client.diagnostics[other]) == []


async def test_a_task_with_a_result_opens_it(client, built: Built) -> None:
    path = task_file(built.root, built.plan_id, "step_001", "failed")
    task_uri = open_doc(client, path)
    lenses = await client.text_document_code_lens_async(lsp.CodeLensParams(text_document=doc_id(task_uri)))
    titles = [lens.command.title for lens in lenses]
    assert titles == ["▶ Hand off (failed)", "Explain", "Open result"]
    opened = lenses[-1].command.arguments[0]
    assert opened == {"path": str(path.with_name("step_001.result.json"))}
    result = await client.workspace_execute_command_async(lsp.ExecuteCommandParams(
        command="conductor.openResult", arguments=[opened]))
    assert result["path"].endswith("step_001.result.json")
    if client.caps_name != "emacs":
        assert client.shown_documents and client.shown_documents[-1].uri.endswith("step_001.result.json")
