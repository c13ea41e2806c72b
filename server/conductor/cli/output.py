"""Shared output helpers for CLI commands: JSON, tables, and error exits."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from conductor.engine.api import EngineError, PolicyInvalid

INDENT_BELOW = 1 << 20  # JSON output is indented for people unless it is over 1 MB (then it is for programs)
EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 3


def emit_json(value: Any) -> None:
    if hasattr(value, "to_json"):
        value = value.to_json()
    elif isinstance(value, list):
        value = [v.to_json() if hasattr(v, "to_json") else v for v in value]
    text = json.dumps(value, ensure_ascii=False, default=str)  # the C encoder: fast on huge documents
    if len(text) < INDENT_BELOW:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    click.echo(text)


def fail(message: str, code: int = EXIT_UNUSABLE) -> NoReturn:
    click.echo(f"conductor: {message}", err=True)
    sys.exit(code)


def refuse(exc: EngineError) -> NoReturn:
    """One line (plus a policy's diagnostics, one per line) and the error's exit code; never a traceback."""
    if isinstance(exc, PolicyInvalid):
        for diag in exc.diagnostics:
            click.echo(diag.format(exc.file), err=True)
    fail(str(exc), exc.exit_code)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
