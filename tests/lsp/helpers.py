"""Building a Conductor project on disk for language-server tests, and waiting for results."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp

from conductor.contract.checksum import task_checksum

POLICY = """\
global_constraints:
  - Always include tests for new functions
file_rules:
  protected_patterns:
    - "*.lock"
    - "migrations/*"
behavior:
  max_diff_lines: 400
  timeout_seconds: 300
verification:
  - name: unit tests
    run: python -m pytest -q
"""

PLAN_ID = "p1"


def task(step_id: str = "step_001", allowed: list[str] | None = None, score: float = 0.9, level: str = "high",
         title: str = "Add hello.py", plan_id: str = PLAN_ID, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "contract_version": "1.0",
        "task_id": step_id,
        "plan_id": plan_id,
        "fork_id": "main",
        "title": title,
        "instruction": "Create hello.py that prints Hello.",
        "allowed_files": allowed if allowed is not None else ["hello.py"],
        "constraints": ["Always include tests for new functions"],
        "protected_patterns": [],
        "max_diff_lines": 400,
        "timeout_seconds": 300,
        "confidence": {"score": score, "level": level, "factors": [
            {"name": "history", "value": 0.9, "weight": 0.4, "detail": "4 of 5 similar steps succeeded"}]},
        "depends_on": [],
        "created_at": "2026-11-26T10:00:00Z",
    }
    body.update(extra)
    body["checksum"] = task_checksum(body)
    return body


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def fork_dir(root: Path, state: str, plan_id: str = PLAN_ID) -> Path:
    folder = root / ".conductor" / "handoff" / f"plan_{plan_id}" / "fork_main" / state
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def make_project(root: Path) -> Path:
    conductor = root / ".conductor"
    conductor.mkdir(parents=True, exist_ok=True)
    (conductor / "policy.yaml").write_text(POLICY, encoding="utf-8")
    (conductor / "config.yaml").write_text("mode: handoff\nforks: 2\n", encoding="utf-8")
    (root / "hello.py").write_text("print('hi')\n", encoding="utf-8")
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "app.py").write_text("x = 1\n", encoding="utf-8")
    (root / "migrations").mkdir(exist_ok=True)
    (root / "migrations" / "0001.sql").write_text("-- m\n", encoding="utf-8")
    plan_dir = conductor / "plans" / PLAN_ID
    plan_dir.mkdir(parents=True, exist_ok=True)
    (plan_dir / "plan.json").write_text(dump({
        "contract_version": "1.0", "goal": "Say hello", "strategy": "minimal",
        "steps": [
            {"id": "step_001", "title": "Add hello.py", "instruction": "Create hello.py.",
             "allowed_files": ["hello.py"]},
            {"id": "step_002", "title": "Add tests", "instruction": "Test hello.py.",
             "allowed_files": ["tests/test_hello.py"], "depends_on": ["step_001"], "estimated_confidence": 0.4},
        ],
    }), encoding="utf-8")
    (fork_dir(root, "pending") / "step_001.task.json").write_text(dump(task()), encoding="utf-8")
    return root


def task_path(root: Path, step_id: str = "step_001", state: str = "pending") -> Path:
    return fork_dir(root, state) / f"{step_id}.task.json"


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
