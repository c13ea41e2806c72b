"""Reading an agent's ``in_progress/step_NNN.result.json`` without trusting it to be whole.

Why a module of its own: the result file arrives while the agent may still be writing it.
Conductor reads the bytes once, validates exactly those bytes with ``conductor.validation``
(syntax, schema, semantic rules, ``task_id`` matching the task) and ingests only a valid
document; a half-written or invalid file yields diagnostics and is left where it is, so the
agent can rewrite it until the task's timeout. The bytes that were judged are the bytes
that are later archived and hashed into the provenance (``data`` / ``digest``).

Only a regular file of at most :data:`MAX_RESULT_BYTES` is read (:mod:`conductor.storage.regular`):
a FIFO, a device, a symlink or a folder under the result's name is refused with its reason
(``result/not-regular``, ``result/too-large``) and never blocks the coordinator.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conductor.contract.result import Result
from conductor.storage.regular import Unreadable, read_regular
from conductor.validation import ValidationContext, validate_document
from conductor.validation.diagnostics import Severity
from conductor.validation.limits import MAX_BYTES

MAX_RESULT_BYTES = MAX_BYTES  # the largest document validation reads


@dataclass
class ResultRead:
    status: Literal["missing", "invalid", "ok"]
    data: bytes = b""
    digest: str = ""
    result: Result | None = None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        return "; ".join(f"{d['line']}:{d['character']} {d['code']}: {d['message']}" for d in self.diagnostics[:5])


def _diag(line: int, character: int, code: str, message: str) -> dict[str, Any]:
    return {"line": line, "character": character, "code": code, "message": message}


def read_result(path: Path, task_id: str) -> ResultRead:
    """Read and validate the result at ``path`` for ``task_id`` (positions are 1-based)."""
    try:
        data = read_regular(path, MAX_RESULT_BYTES)
    except FileNotFoundError:
        return ResultRead("missing")
    except Unreadable as exc:
        code = "result/too-large" if exc.kind == "too-large" else "result/not-regular"
        return ResultRead("invalid", b"", "", None,
                          [_diag(1, 1, code, f"{path.name} {exc.reason}")])
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ResultRead("invalid", data, digest, None,
                          [_diag(1, 1, "result/not-utf8", "result file is not UTF-8 text")])
    if not text.strip():
        return ResultRead("invalid", data, digest, None,
                          [_diag(1, 1, "result/empty", "result file is empty (still being written?)")])
    _doc, diagnostics = validate_document(text, "result", path=path, context=ValidationContext(path=path))
    errors = [d for d in diagnostics if d.severity == Severity.ERROR]
    if errors:
        return ResultRead("invalid", data, digest, None, [
            _diag(d.range.start_line + 1, d.range.start_character + 1, d.code, d.message) for d in errors])
    try:
        result = Result.model_validate(json.loads(text))
    except ValueError as exc:  # the schema check above should have caught it
        return ResultRead("invalid", data, digest, None, [_diag(1, 1, "result/invalid", str(exc))])
    if result.task_id != task_id:
        return ResultRead("invalid", data, digest, None, [
            _diag(1, 1, "result/task-mismatch", f"result is for {result.task_id}, not {task_id}")])
    return ResultRead("ok", data, digest, result, [])
