"""Code actions: quick fixes where the fix is certain, and source actions.

Quick fixes come from the diagnostics of the current analysis (not from what the client
sends back, which may have lost ``data``): rename a near-miss key, set confidence.level to
match the score, rewrite a ``..`` path to its normal form. "Recompute checksum" re-signs a
task and so is offered only as an explicit, never preferred, choice. Source actions add a
protected pattern to ``policy.yaml`` and explain a step.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from conductor.lsp.documents import Analysis, read_disk
from conductor.lsp.positions import Lines
from conductor.lsp.steps import document_scope
from conductor.project.layout import CONDUCTOR_DIR, ProjectLayout
from conductor.validation import Diagnostic
from conductor.validation.diagnostics import Range

CHECKSUM_TITLE = "Recompute checksum (re-signs this task: use only if you made this edit on purpose; " \
                 "a tampered task becomes accepted)"


def _overlaps(a: Range, line_start: int, line_end: int) -> bool:
    return a.start_line <= line_end and a.end_line >= line_start


def _scalar(value: str, syntax: str) -> str:
    if syntax == "json":
        return json.dumps(value, ensure_ascii=False)
    plain = value and not value.startswith(("*", "&", "!", "[", "{", "'", '"', "%", "@", "`", "-", "?", "|", ">"))
    return value if plain and ": " not in value and " #" not in value else json.dumps(value, ensure_ascii=False)


def _fix(title: str, uri: str, rng: lsp.Range, new_text: str, diagnostic: lsp.Diagnostic,
         preferred: bool = True) -> lsp.CodeAction:
    return lsp.CodeAction(
        title=title,
        kind=lsp.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        is_preferred=preferred,
        edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(range=rng, new_text=new_text)]}),
    )


def quick_fixes(analysis: Analysis, lines: Lines, rng: lsp.Range, to_lsp: Any) -> list[lsp.CodeAction]:
    out: list[lsp.CodeAction] = []
    syntax = analysis.doc.syntax
    for d in analysis.diagnostics:
        if not _overlaps(d.range, rng.start.line, rng.end.line):
            continue
        action = _quick_fix(analysis, lines, d, syntax, to_lsp(d))
        if action is not None:
            out.append(action)
    return out


def _quick_fix(analysis: Analysis, lines: Lines, d: Diagnostic, syntax: str, diagnostic: lsp.Diagnostic
               ) -> lsp.CodeAction | None:
    uri = analysis.uri
    where = lines.range(d.range)
    code = d.code
    if code.endswith("/unknown-key") and d.data.get("suggestion"):
        suggestion = str(d.data["suggestion"])
        new = json.dumps(suggestion) if syntax == "json" else suggestion
        return _fix(f"Rename `{d.data.get('key')}` to `{suggestion}`", uri, where, new, diagnostic)
    if code == "task/confidence-mismatch" and d.data.get("expected"):
        expected = str(d.data["expected"])
        return _fix(f"Set confidence level to `{expected}` (matches the score)", uri, where,
                    _scalar(expected, syntax), diagnostic)
    if code.endswith("/path-parent"):
        entry = d.data.get("entry")
        if not isinstance(entry, str):
            return None
        normal = posixpath.normpath(entry)
        return _fix(f"Rewrite `{entry}` as `{normal}`", uri, where, _scalar(normal, syntax), diagnostic)
    if code == "task/checksum-mismatch" and d.data.get("expected"):
        return _fix(CHECKSUM_TITLE, uri, where, _scalar(str(d.data["expected"]), syntax), diagnostic,
                    preferred=False)
    return None


def protect_action(root: Path | None, relative: str, supports_create: bool) -> lsp.CodeAction | None:
    """An edit of the project's policy file adding ``relative`` to file_rules.protected_patterns."""
    if root is None or not relative:
        return None
    layout = ProjectLayout.at(root)
    policy = layout.policy_file
    uri = policy.as_uri()
    text, unreadable = read_disk(policy)
    if unreadable is not None:
        return None  # a policy that is not a regular file is not edited
    title = f"Add protected pattern `{relative}` to {layout.policy_display}"
    entry = json.dumps(relative) if relative.startswith(("*", "[", "!", "&", "{", "?")) or " " in relative else relative
    if text is None:
        if not supports_create:
            return None
        body = f"file_rules:\n  protected_patterns:\n    - {entry}\n"
        return lsp.CodeAction(
            title=title, kind=lsp.CodeActionKind.Source,
            edit=lsp.WorkspaceEdit(document_changes=[
                lsp.CreateFile(uri=uri, kind="create", options=lsp.CreateFileOptions(ignore_if_exists=True)),
                lsp.TextDocumentEdit(
                    text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                    edits=[lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=0, character=0),
                                                        end=lsp.Position(line=0, character=0)), new_text=body)]),
            ]),
        )
    lines = text.split("\n")
    insert_at, new_text = _protected_insertion(lines, entry)
    pos = lsp.Position(line=insert_at, character=0)
    return lsp.CodeAction(
        title=title, kind=lsp.CodeActionKind.Source,
        edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(range=lsp.Range(start=pos, end=pos), new_text=new_text)]}),
    )


def _protected_insertion(lines: list[str], entry: str) -> tuple[int, str]:
    """Where and what to insert so ``entry`` joins the protected patterns (block style)."""
    rules = next((i for i, line in enumerate(lines) if line.rstrip() == "file_rules:"), None)
    if rules is None:
        last = len(lines) if lines[-1:] != [""] else len(lines) - 1
        return last, f"file_rules:\n  protected_patterns:\n    - {entry}\n"
    patterns = None
    end = rules + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "#"))):
        if lines[end].strip().startswith("protected_patterns:"):
            patterns = end
        end += 1
    if patterns is None:
        return rules + 1, f"  protected_patterns:\n    - {entry}\n"
    indent = len(lines[patterns]) - len(lines[patterns].lstrip())
    last_item = patterns
    item_indent = indent + 2
    for i in range(patterns + 1, end):
        stripped = lines[i].strip()
        if stripped.startswith("- "):
            item_indent = len(lines[i]) - len(lines[i].lstrip())
            last_item = i
        elif stripped and not stripped.startswith("#"):
            break
    return last_item + 1, f"{' ' * item_indent}- {entry}\n"


def source_actions(analysis: Analysis | None, path: Path | None, root: Path | None, line: int, char: int,
                   supports_create: bool) -> list[lsp.CodeAction]:
    out: list[lsp.CodeAction] = []
    if analysis is not None and analysis.kind in ("task", "plan"):
        data = analysis.doc.data if isinstance(analysis.doc.data, dict) else {}
        text_line = analysis.text.split("\n", line + 1)[line] if line < analysis.text.count("\n") + 1 else ""
        first = len(text_line) - len(text_line.lstrip())
        found = analysis.doc.path_at(line, char) or analysis.doc.path_at(line, first)
        step_id, plan_id = None, None
        if analysis.kind == "task":
            step_id, (plan_id, _fork) = data.get("task_id"), document_scope(analysis)
            entries = data.get("allowed_files") or []
            if found and found[0][:1] == ("allowed_files",) and len(found[0]) >= 2 and isinstance(found[0][1], int):
                index = found[0][1]
                if index < len(entries) and isinstance(entries[index], str):
                    action = protect_action(root, entries[index], supports_create)
                    if action:
                        out.append(action)
        else:
            plan_id, _fork = document_scope(analysis)
            steps = data.get("steps") or []
            if found and found[0][:1] == ("steps",) and len(found[0]) >= 2 and isinstance(found[0][1], int):
                index = found[0][1]
                if index < len(steps) and isinstance(steps[index], dict):
                    step_id = steps[index].get("id")
        if isinstance(step_id, str):
            args: dict[str, Any] = {"step_id": step_id}
            if plan_id:
                args["plan_id"] = plan_id
            out.append(lsp.CodeAction(
                title=f"Explain this step ({step_id})", kind=lsp.CodeActionKind.Source,
                command=lsp.Command(title="Explain", command="conductor.explain", arguments=[args]),
            ))
    elif path is not None and root is not None and analysis is None:
        try:
            relative = path.resolve().relative_to(root).as_posix()
        except ValueError:
            relative = ""
        if relative and not relative.startswith(CONDUCTOR_DIR + "/"):
            action = protect_action(root, relative, supports_create)
            if action:
                out.append(action)
    return out
