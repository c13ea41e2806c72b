"""Reads policy levels: the project file, an unsaved editor buffer, a plan's or a step's ``policy`` block.

The one policy reader: the engine, the CLI, the language server (diagnostics and hovers) and
the MCP server all get their levels here. A level keeps the validated model and the 1-based
line of every key it sets, so the merged policy can say where each effective value came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from conductor.contract.policy import Policy
from conductor.policy.origin import Level, Origin
from conductor.project.files import read_text
from conductor.validation import ParsedDocument, ValidationContext, validate_document
from conductor.validation.diagnostics import Diagnostic, Severity
from conductor.validation.document import JsonPath
from conductor.validation.limits import MAX_BYTES


class PolicyError(Exception):
    """A policy file that cannot be used; carries the validation diagnostics."""

    def __init__(self, file: str, diagnostics: list[Diagnostic], reason: str | None = None) -> None:
        self.file = file
        self.diagnostics = diagnostics
        first = diagnostics[0].format(file) if diagnostics else f"{file}: {reason or 'unusable'}"
        more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
        super().__init__(f"invalid policy: {first}{more}")


@dataclass
class PolicyLevel:
    level: Level
    policy: Policy
    file: str | None = None
    lines: dict[JsonPath, int] = field(default_factory=dict)
    by_agent: bool = False  # written by an agent or a model (a handed-off or model-made plan): may only tighten

    def origin(self, *path: str | int) -> Origin:
        """Origin of the value at ``path`` (falls back to the nearest enclosing key's line)."""
        line = self.lines.get(path)
        if line is None:
            key: JsonPath = path[:-1]
            while key and key not in self.lines:
                key = key[:-1]
            line = self.lines.get(key)
        return Origin(self.level, self.file, line)

    @classmethod
    def from_document(cls, doc: ParsedDocument, level: Level, file: str | None, prefix: JsonPath = (),
                      by_agent: bool = False) -> PolicyLevel:
        """Build a level from the block at ``prefix`` of an already validated document."""
        data: Any = doc.data
        for part in prefix:
            data = data[part]
        policy = Policy.model_validate(data or {})
        n = len(prefix)
        lines = {
            path[n:]: ranges.key.start_line + 1 if ranges.key else ranges.value.start_line + 1
            for path, ranges in doc.nodes.items()
            if path[:n] == prefix
        }
        return cls(level=level, policy=policy, file=file, lines=lines, by_agent=by_agent)


def _errors(doc: ParsedDocument, diagnostics: list[Diagnostic]) -> list[Diagnostic] | None:
    errors = [d for d in diagnostics if d.severity == Severity.ERROR]
    if errors or not doc.ok:
        return errors or diagnostics
    return None


def level_from_text(text: str, display: str, level: Level = "project", path: Path | None = None) -> PolicyLevel:
    """The level a policy text sets (a file's content, or an unsaved editor buffer).

    Raises :class:`PolicyError` with every diagnostic when the text is invalid: Conductor
    refuses to act under a policy it cannot read.
    """
    doc, diagnostics = validate_document(text, "policy", path=path or display, context=ValidationContext())
    errors = _errors(doc, diagnostics)
    if errors is not None:
        raise PolicyError(display, errors)
    try:
        return PolicyLevel.from_document(doc, level, display)
    except ValidationError as exc:  # pragma: no cover - the schema check above catches these
        raise PolicyError(display, []) from exc


def load_policy_file(path: Path, display: str | None = None) -> PolicyLevel | None:
    """The project level from ``path``; ``None`` when the file does not exist.

    Only a regular file of at most 2 MiB is read (a FIFO or a symlink there is refused).
    """
    name = display or str(path)
    try:
        text = read_text(path, MAX_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PolicyError(name, [], reason=str(getattr(exc, "reason", None) or exc.strerror or exc)) from exc
    return level_from_text(text, name, path=path)


def plan_levels(doc: ParsedDocument, display: str, step_id: str | None = None) -> list[PolicyLevel]:
    """The plan level and (optionally) one step's level of a validated plan document. A stored plan
    was written by a planning agent or the model, so its levels are ``by_agent`` (they may only tighten).

    Raises ``KeyError`` naming ``step_id`` when the plan has no such step.
    """
    if not doc.ok:
        raise PolicyError(display, [])
    data = doc.data if isinstance(doc.data, dict) else {}
    levels = []
    if data.get("policy"):
        levels.append(PolicyLevel.from_document(doc, "plan", display, ("policy",), by_agent=True))
    if step_id:
        for i, step in enumerate(data.get("steps") or []):
            if isinstance(step, dict) and step.get("id") == step_id:
                if step.get("policy"):
                    levels.append(PolicyLevel.from_document(doc, "step", display, ("steps", i, "policy"),
                                                            by_agent=True))
                break
        else:
            raise KeyError(step_id)
    return levels


def load_plan_levels(path: Path, display: str, step_id: str | None = None) -> list[PolicyLevel]:
    """The plan level (and ``step_id``'s) of the plan document stored at ``path``.

    Raises ``FileNotFoundError`` when there is no such document, :class:`PolicyError` when it
    is invalid, ``KeyError`` when the plan has no step ``step_id``.
    """
    try:
        text = read_text(path, MAX_BYTES)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise PolicyError(display, [], reason=str(getattr(exc, "reason", None) or exc.strerror or exc)) from exc
    doc, diagnostics = validate_document(text, "plan", path=path, context=ValidationContext())
    errors = _errors(doc, diagnostics)
    if errors is not None:
        raise PolicyError(display, errors)
    return plan_levels(doc, display, step_id)
