"""Which kind of Conductor document a path is (policy, config, task, result, provenance, plan, verdict)."""

from __future__ import annotations

import os
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


def detect_kind(path: str | os.PathLike[str]) -> DocumentKind | None:
    """The document kind a file name implies, or ``None`` for files Conductor does not own.

    Works on the name alone (``conductor validate`` asks for every file of a long plan)."""
    text = os.fspath(path)
    name = os.path.basename(text)
    if name.endswith((".json", ".yaml", ".yml")):
        for suffix, kind in SUFFIX_KINDS.items():
            if name.endswith(suffix):
                return kind
    if name in ("policy.yaml", "policy.yml", "config.yaml", "config.yml") and CONDUCTOR_DIR in PurePath(text).parts:
        return "policy" if name.startswith("policy") else "config"
    return None


def syntax_of(path: str | PurePath) -> Syntax:
    return "json" if str(path).endswith(".json") else "yaml"
