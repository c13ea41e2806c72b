"""The diagnostic a validation produces, and the catalogue of stable diagnostic codes.

Positions are 0-based lines and characters counted in Unicode code points; adapters convert
(the CLI prints 1-based lines and columns, the language server converts to the negotiated
LSP position encoding). Every code has a README section, so editors can link to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

DOCS_URL = "https://github.com/conductor-runtime/conductor/blob/main/README.md"


class Severity(IntEnum):
    """Same numbering as LSP's DiagnosticSeverity."""

    ERROR = 1
    WARNING = 2
    INFORMATION = 3
    HINT = 4

    @property
    def label(self) -> str:
        return self.name.lower() if self is not Severity.INFORMATION else "info"


@dataclass(frozen=True, order=True)
class Range:
    start_line: int
    start_character: int
    end_line: int
    end_character: int

    @classmethod
    def point(cls, line: int, character: int) -> Range:
        return cls(line, character, line, character)


START = Range(0, 0, 0, 0)


@dataclass
class Diagnostic:
    range: Range
    severity: Severity
    code: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def docs_url(self) -> str:
        """README section that explains this diagnostic (one section per rule, shared by all kinds)."""
        return f"{DOCS_URL}#{self.code.split('/', 1)[-1]}"

    def to_json(self) -> dict[str, Any]:
        return {
            "range": {
                "start": {"line": self.range.start_line, "character": self.range.start_character},
                "end": {"line": self.range.end_line, "character": self.range.end_character},
            },
            "severity": self.severity.label,
            "code": self.code,
            "message": self.message,
            "data": self.data,
        }

    def format(self, path: str) -> str:
        """Compiler style: ``file:line:col: severity code message`` with 1-based line and column."""
        return (
            f"{path}:{self.range.start_line + 1}:{self.range.start_character + 1}: "
            f"{self.severity.label} {self.code} {self.message}"
        )
