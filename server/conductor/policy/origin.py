"""Where an effective policy value came from: a level, a file and a line."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

Level = Literal["default", "project", "plan", "step"]


class Origin(NamedTuple):
    """A named tuple: a policy of 100,000 constraints creates as many, so creation must be cheap."""

    level: Level
    file: str | None = None
    line: int | None = None  # 1-based

    def __str__(self) -> str:
        if self.file is None:
            return self.level
        return f"{self.level} {self.file}:{self.line}" if self.line else f"{self.level} {self.file}"

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "file": self.file, "line": self.line}


DEFAULT = Origin("default")
