"""Finding the engine's files in a built project, opening them in the editor, and waiting for results."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp


def plan_document(root: Path, plan_id: str, fork_id: str = "main") -> Path:
    """The plan document the runner wrote for a fork."""
    return root / ".conductor" / "plans" / plan_id / f"{fork_id}.plan.json"


def fork_dir(root: Path, plan_id: str, state: str, fork_id: str = "main") -> Path:
    return root / ".conductor" / "handoff" / f"plan_{plan_id}" / f"fork_{fork_id}" / state


def task_file(root: Path, plan_id: str, step_id: str, state: str) -> Path:
    path = fork_dir(root, plan_id, state) / f"{step_id}.task.json"
    assert path.is_file(), f"the engine wrote no {path}"
    return path


def pending_task(root: Path, plan_id: str) -> Path:
    """``step_004``: handed off by the engine, not claimed by any agent."""
    return task_file(root, plan_id, "step_004", "pending")


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def line_of(path_or_text: Path | str, needle: str) -> int:
    """0-based line of the first line containing ``needle``."""
    text = path_or_text.read_text(encoding="utf-8") if isinstance(path_or_text, Path) else path_or_text
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def codes(diagnostics: Any) -> list[str]:
    return sorted(str(d.code) for d in diagnostics or [])


def open_doc(client: Any, path: Path, text: str | None = None, language: str | None = None, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=uri, language_id=language or ("yaml" if path.suffix in (".yaml", ".yml") else "json"), version=version,
        text=text if text is not None else path.read_text(encoding="utf-8"))))
    return uri


def replace_all(client: Any, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))


def notify(client: Any, registered: bool, *changes: tuple[Path, lsp.FileChangeType]) -> None:
    """What the editor does for files it watches; without registration the server's own watcher sees them."""
    if registered:
        client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(
            changes=[lsp.FileEvent(uri=p.as_uri(), type=t) for p, t in changes]))
