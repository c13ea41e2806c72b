"""Which kind of Conductor document a path is (policy, config, task, result, provenance, plan, verdict)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

from conductor.project.layout import CONDUCTOR_DIR
from conductor.validation.document import Syntax

DocumentKind = Literal["policy", "config", "task", "result", "provenance", "plan", "verdict"]

SUFFIX_KINDS: dict[str, DocumentKind] = {
    ".task.json": "task",
    ".result.json": "result",
    ".provenance.json": "provenance",
    ".verdict.json": "verdict",
    ".plan.json": "plan",
    ".plan.yaml": "plan",
    ".plan.yml": "plan",
}


def detect_kind(path: str | PurePath) -> DocumentKind | None:
    """The document kind a file name implies, or ``None`` for files Conductor does not own."""
    p = PurePath(path)
    name = p.name
    for suffix, kind in SUFFIX_KINDS.items():
        if name.endswith(suffix):
            return kind
    in_conductor = CONDUCTOR_DIR in p.parts
    if in_conductor and name in ("policy.yaml", "policy.yml"):
        return "policy"
    if in_conductor and name in ("config.yaml", "config.yml"):
        return "config"
    return None


def syntax_of(path: str | PurePath) -> Syntax:
    return "json" if str(path).endswith(".json") else "yaml"
