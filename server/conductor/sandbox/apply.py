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
is atomic (temp file + fsync + rename). :func:`apply_edits` runs it sandboxed (or in-process
when the policy has the sandbox off or unavailable).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conductor.policy.globs import matches_allowed, matches_protected, normalize, path_problem
from conductor.storage.atomic import atomic_write_bytes

MAX_EDIT_BYTES = 8 * 1024 * 1024


@dataclass
class ApplyReport:
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    sandbox: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"written": self.written, "deleted": self.deleted, "refused": self.refused}


def _link_problem(workspace: Path, rel: str) -> str | None:
    """Why writing ``rel`` would go through something that is not a plain folder, else None."""
    current = workspace
    parts = rel.split("/")
    for index, part in enumerate(parts):
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return None
        last = index == len(parts) - 1
        if stat.S_ISLNK(info.st_mode):
            return f"`{'/'.join(parts[: index + 1])}` is a symlink"
        if not last and not stat.S_ISDIR(info.st_mode):
            return f"`{'/'.join(parts[: index + 1])}` is not a folder"
        if last and not stat.S_ISREG(info.st_mode):
            return f"`{rel}` exists and is not a regular file"
    return None


def _make_parents(workspace: Path, rel: str) -> None:
    current = workspace
    for part in rel.split("/")[:-1]:
        current = current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                raise NotADirectoryError(str(current)) from None


def apply_in_process(workspace: Path, files: Sequence[dict[str, Any]], allowed: Sequence[str],
                     protected: Sequence[str]) -> ApplyReport:
    """Apply ``files`` to ``workspace`` here, refusing anything outside the rules (see the module doc)."""
    report = ApplyReport()
    for item in files:
        raw = item.get("path") if isinstance(item, dict) else None
        if not isinstance(raw, str):
            report.refused.append({"path": repr(raw), "reason": "the path is not a string"})
            continue
        problem = path_problem(raw)
        rel = normalize(raw)
        reason = None
        if problem is not None:
            reason = problem[1]
        elif not matches_allowed(rel, allowed):
            reason = "outside allowed_files"
        elif (pattern := matches_protected(rel, protected)) is not None:
            reason = f"protected by `{pattern}`"
        else:
            reason = _link_problem(workspace, rel)
        if reason is not None:
            report.refused.append({"path": raw, "reason": reason})
            continue
        target = workspace / rel
        try:
            if item.get("delete"):
                if os.path.lexists(target):
                    os.unlink(target)
                    report.deleted.append(rel)
                continue
            content = item.get("content")
            if not isinstance(content, str):
                report.refused.append({"path": raw, "reason": "content is not a string"})
                continue
            data = content.encode("utf-8")
            if len(data) > MAX_EDIT_BYTES:
                report.refused.append({"path": raw, "reason": f"content over {MAX_EDIT_BYTES} bytes"})
                continue
            _make_parents(workspace, rel)
            atomic_write_bytes(target, data)
            report.written.append(rel)
        except OSError as exc:
            report.refused.append({"path": raw, "reason": f"{exc.strerror or exc} ({type(exc).__name__})"})
    return report


def apply_edits(workspace: Path, files: Sequence[dict[str, Any]], allowed: Sequence[str],
                protected: Sequence[str], *, settings: Any = None, project_root: Path | None = None,
                warn: Callable[[str], None] | None = None, timeout: float = 120) -> ApplyReport:
    """Apply edits through ``python -m conductor.sandbox.apply`` in the sandbox ``settings`` ask for.

    ``settings`` is a :class:`conductor.sandbox.SandboxSettings` (default: ``auto``, network
    denied: writing files needs none). Raises :class:`conductor.sandbox.SandboxUnavailable`
    when the sandbox is required and missing. Without a sandbox the edits are applied in
    this process with the same checks.
    """
    from conductor.sandbox import SandboxSettings, prepare, project_mounts

    settings = settings or SandboxSettings(mode="auto", network="deny")
    settings = SandboxSettings(mode=settings.mode, network="deny")
    workspace = workspace.resolve()
    prepared = prepare([sys.executable, "-m", "conductor.sandbox.apply"],
                       project_mounts(workspace, project_root), settings, warn)
    if not prepared.sandboxed:
        report = apply_in_process(workspace, files, allowed, protected)
        report.sandbox = prepared.describe()
        return report
    request = {"workspace": str(workspace), "allowed_files": list(allowed),
               "protected_patterns": list(protected), "files": list(files)}
    done = subprocess.run(prepared.argv, input=json.dumps(request), capture_output=True, text=True,
                          timeout=timeout, cwd=workspace, env=_minimal_env())
    if done.returncode != 0:
        raise RuntimeError(f"sandboxed apply failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    answer = json.loads(done.stdout)
    return ApplyReport(answer["written"], answer["deleted"], answer["refused"], prepared.describe())


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
