"""Reads one policy level (the project file, or a plan's or step's ``policy`` block).

A level keeps the validated model and the 1-based line of every key it sets, so the merged
policy can say where each effective value came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from conductor.contract.policy import Policy
from conductor.policy.origin import Level, Origin
from conductor.validation.diagnostics import Diagnostic
from conductor.validation.document import JsonPath, ParsedDocument


class PolicyError(Exception):
    """A policy file that cannot be used; carries the validation diagnostics."""

    def __init__(self, file: str, diagnostics: list[Diagnostic]) -> None:
        self.file = file
        self.diagnostics = diagnostics
        first = diagnostics[0].format(file) if diagnostics else file
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
        key: JsonPath = tuple(path)
        while key and key not in self.lines:
            key = key[:-1]
        return Origin(self.level, self.file, self.lines.get(key))

    @classmethod
    def from_document(cls, doc: ParsedDocument, level: Level, file: str | None, prefix: JsonPath = ()) -> PolicyLevel:
        """Build a level from the block at ``prefix`` of an already validated document."""
        data = doc.data
        for part in prefix:
            data = data[part]
        policy = Policy.model_validate(data or {})
        lines = {
            path[len(prefix) :]: ranges.key.start_line + 1 if ranges.key else ranges.value.start_line + 1
            for path, ranges in doc.nodes.items()
            if path[: len(prefix)] == prefix
        }
        return cls(level=level, policy=policy, file=file, lines=lines)


def load_policy_file(path: Path, display: str | None = None) -> PolicyLevel | None:
    """The project level from ``path``; ``None`` when the file does not exist.

    Raises :class:`PolicyError` with every diagnostic when the file is invalid: Conductor
    refuses to act under a policy it cannot read.
    """
    from conductor.validation import validate_document

    if not path.exists():
        return None
    name = display or str(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    doc, diagnostics = validate_document(text, "policy", path=path)
    errors = [d for d in diagnostics if d.severity == 1]
    if errors or not doc.ok:
        raise PolicyError(name, errors or diagnostics)
    try:
        return PolicyLevel.from_document(doc, "project", name)
    except ValidationError as exc:  # pragma: no cover - the schema check above catches these
        raise PolicyError(name, []) from exc


def level_from_text(text: str, display: str, level: Level = "project") -> PolicyLevel:
    """A level from policy text (a policy pinned in a plan's journal); raises :class:`PolicyError`."""
    from conductor.validation import validate_document

    doc, diagnostics = validate_document(text, "policy", path=display)
    errors = [d for d in diagnostics if d.severity == 1]
    if errors or not doc.ok:
        raise PolicyError(display, errors or diagnostics)
    return PolicyLevel.from_document(doc, level, display)
