"""Where an effective policy value came from: a level, a file and a line."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Level = Literal["default", "project", "plan", "step"]


@dataclass(frozen=True)
class Origin:
    level: Level
    file: str | None = None
    line: int | None = None  # 1-based

    def __str__(self) -> str:
        if self.file is None:
            return self.level
        return f"{self.level} {self.file}:{self.line}" if self.line else f"{self.level} {self.file}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT = Origin("default")
