"""The engine facade: every operation a person can ask for, as plain functions.

The CLI, the language server and the MCP server call these and only format the results;
none of them holds business logic. Results are JSON-serializable dictionaries so each
adapter can print them, return them over a protocol, or render them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conductor.project.init import init_project as _init_project
from conductor.project.layout import ProjectLayout, find_project_root

__all__ = ["EngineError", "find_project_root", "project_root"]
from conductor.validation import detect_kind, validate_file

SKIP_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".ruff_cache", "worktrees"}
)


class EngineError(Exception):
    """A request the engine cannot carry out; the message says what and where."""


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    root = find_project_root(start)
    if root is None:
        where = Path(start or Path.cwd()).resolve()
        raise EngineError(f"{where}: not inside a Conductor project (no .conductor folder); run `conductor init .`")
    return root


def init_project(path: str | os.PathLike[str] = ".", name: str | None = None) -> dict[str, Any]:
    return _init_project(Path(path), name).to_json()


def conductor_files(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, bool]]:
    """Files to validate under ``paths``: (path, named explicitly)."""
    found: list[tuple[Path, bool]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
                for name in sorted(filenames):
                    candidate = Path(dirpath) / name
                    if detect_kind(candidate) is not None:
                        found.append((candidate, False))
        else:
            found.append((p, True))
    return found


def validate_paths(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Validate every Conductor document under ``paths``.

    Returns one entry per file: ``{"path", "kind", "diagnostics": [...], "error"?}``.
    """
    out: list[dict[str, Any]] = []
    for path, explicit in conductor_files(paths):
        kind = detect_kind(path)
        entry: dict[str, Any] = {"path": str(path), "kind": kind, "diagnostics": []}
        if not path.exists():
            entry["error"] = "no such file or folder"
        elif kind is None:
            entry["error"] = "not a Conductor document (policy, config, plan, task, result, provenance)"
        else:
            try:
                entry["diagnostics"] = [d.to_json() for d in validate_file(path, kind)]
            except OSError as exc:
                entry["error"] = f"cannot read: {exc.strerror}"
        if explicit or entry["diagnostics"] or "error" in entry or kind is not None:
            out.append(entry)
    return out


def format_diagnostic(path: str, diag: dict[str, Any]) -> str:
    start = diag["range"]["start"]
    return f"{path}:{start['line'] + 1}:{start['character'] + 1}: {diag['severity']} {diag['code']} {diag['message']}"


def effective_policy(
    root: str | os.PathLike[str] | None = None,
    *,
    plan_id: str | None = None,
    step_id: str | None = None,
    show_origin: bool = True,
) -> dict[str, Any]:
    """The effective policy (project, or with a plan's and a step's levels merged over it)."""
    from conductor.policy import merge
    from conductor.policy.levels import PolicyLevel, load_policy_file

    layout = ProjectLayout.at(project_root(root))
    levels: list[PolicyLevel] = []
    project = load_policy_file(layout.policy_file, display=".conductor/policy.yaml")
    if project:
        levels.append(project)
    if plan_id:
        levels.extend(plan_policy_levels(layout, plan_id, step_id))
    return merge(levels).to_json(show_origin=show_origin)


def plan_policy_levels(layout: ProjectLayout, plan_id: str, step_id: str | None) -> list[Any]:
    """The plan level and (optionally) one step's level of a stored plan document."""
    from conductor.policy import PolicyError
    from conductor.policy.levels import PolicyLevel
    from conductor.validation import validate_document

    path = layout.plan_file(plan_id)
    if not path.exists():
        raise EngineError(f"{path}: no plan {plan_id!r}")
    display = path.relative_to(layout.root).as_posix()
    doc, diagnostics = validate_document(path.read_text(encoding="utf-8"), "plan", path=path)
    if not doc.ok:
        raise PolicyError(display, [d for d in diagnostics if d.severity == 1])
    levels = []
    if doc.data.get("policy"):
        levels.append(PolicyLevel.from_document(doc, "plan", display, ("policy",)))
    if step_id:
        for i, step in enumerate(doc.data["steps"]):
            if step["id"] == step_id:
                if step.get("policy"):
                    levels.append(PolicyLevel.from_document(doc, "step", display, ("steps", i, "policy")))
                break
        else:
            raise EngineError(f"{display}: plan has no step {step_id!r}")
    return levels
