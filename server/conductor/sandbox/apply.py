"""Apply a model's whole-file edits to a working copy, from inside the sandbox.

Why it exists: in llm mode Conductor is its own agent and writes the model's edits itself.
Those writes should have the same walls as any agent Conductor starts, so they are done by
a small process run through :mod:`conductor.sandbox` (only the working copy writable)::

    python -m conductor.sandbox.apply < edits.json

stdin is one JSON object ``{"workspace", "allowed_files", "protected_patterns", "files":
[{"path", "content", "delete"?}]}``; stdout is ``{"written": [...], "deleted": [...],
"refused": [{"path", "reason"}]}``. A path is refused when it is malformed or escapes
(``..``, absolute), is outside ``allowed_files``, matches a protected pattern, or goes
through a symlink or a non-directory (nothing is ever written *through* a link). Each write
is atomic (temp file + fsync + rename). :func:`apply_edits` checks the rules in the caller
and runs the writes in the sandbox through :mod:`conductor.sandbox.writer` (a
standard-library-only process, so a sandboxed apply costs a Python start-up, not an import of
Conductor), or in-process when the policy has the sandbox off or unavailable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conductor.contract.globs import matches_allowed, matches_protected, normalize, path_problem
from conductor.sandbox import SandboxSettings, prepare, project_mounts, writer
from conductor.sandbox.writer import apply_approved


@dataclass
class ApplyReport:
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    sandbox: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"written": self.written, "deleted": self.deleted, "refused": self.refused}


def check_edits(files: Sequence[dict[str, Any]], allowed: Sequence[str],
                protected: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Split ``files`` into approved edits (normalized paths) and refusals by the rules of the task."""
    approved: list[dict[str, Any]] = []
    refused: list[dict[str, str]] = []
    for item in files:
        raw = item.get("path") if isinstance(item, dict) else None
        if not isinstance(raw, str):
            refused.append({"path": repr(raw), "reason": "the path is not a string"})
            continue
        problem = path_problem(raw)
        rel = normalize(raw)
        if problem is not None:
            refused.append({"path": raw, "reason": problem[1]})
        elif not rel or not matches_allowed(rel, allowed):
            refused.append({"path": raw, "reason": "outside allowed_files"})
        elif (pattern := matches_protected(rel, protected)) is not None:
            refused.append({"path": raw, "reason": f"protected by `{pattern}`"})
        elif not item.get("delete") and not isinstance(item.get("content"), str):
            refused.append({"path": raw, "reason": "content is not a string"})
        else:
            approved.append({"path": rel, "shown": raw, "content": item.get("content", ""),
                             "delete": bool(item.get("delete"))})
    return approved, refused


def apply_in_process(workspace: Path, files: Sequence[dict[str, Any]], allowed: Sequence[str],
                     protected: Sequence[str]) -> ApplyReport:
    """Apply ``files`` to ``workspace`` here, refusing anything outside the rules (see the module doc)."""
    approved, refused = check_edits(files, allowed, protected)
    done = apply_approved(str(workspace), approved)
    return ApplyReport(done["written"], done["deleted"], refused + done["refused"])


def apply_edits(workspace: Path, files: Sequence[dict[str, Any]], allowed: Sequence[str],
                protected: Sequence[str], *, settings: Any = None, project_root: Path | None = None,
                warn: Callable[[str], None] | None = None, timeout: float = 120) -> ApplyReport:
    """Apply edits through ``python -m conductor.sandbox.apply`` in the sandbox ``settings`` ask for.

    ``settings`` is a :class:`conductor.sandbox.SandboxSettings` (default: ``auto``, network
    denied: writing files needs none). Raises :class:`conductor.sandbox.SandboxUnavailable`
    when the sandbox is required and missing. Without a sandbox the edits are applied in
    this process with the same checks.
    """
    settings = settings or SandboxSettings(mode="auto", network="deny")
    settings = SandboxSettings(mode=settings.mode, network="deny")
    workspace = workspace.resolve()
    # The rules are checked here; the writes (and the link checks, which must see the folders as
    # they are when writing) happen in a standard-library-only Python inside the sandbox.
    prepared = prepare([sys.executable, "-I", "-S", writer.__file__], project_mounts(workspace, project_root),
                       settings, warn)
    approved, refused = check_edits(files, allowed, protected)
    if not prepared.sandboxed:
        done = apply_approved(str(workspace), approved)
    else:
        request = {"workspace": str(workspace), "files": approved}
        child = subprocess.run(prepared.argv, input=json.dumps(request), capture_output=True, text=True,
                               timeout=timeout, cwd=workspace, env=_minimal_env())
        if child.returncode != 0:
            raise RuntimeError(f"sandboxed apply failed (exit {child.returncode}): {child.stderr.strip()[-500:]}")
        done = json.loads(child.stdout)
    return ApplyReport(done["written"], done["deleted"], refused + done["refused"], prepared.describe())


def _minimal_env() -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k in keep}


def main() -> int:
    try:
        request = json.load(sys.stdin)
        workspace = Path(request["workspace"])
        files = request["files"]
        if not isinstance(files, list):
            raise ValueError("`files` must be a list")
        report = apply_in_process(workspace, files, list(request.get("allowed_files") or []),
                                  list(request.get("protected_patterns") or []))
    except (ValueError, KeyError, TypeError) as exc:
        print(f"conductor.sandbox.apply: bad request on stdin: {exc}", file=sys.stderr)
        return 2
    json.dump(report.to_json(), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
