"""User settings: ``workspace/configuration`` section ``conductor`` over ``initializationOptions``.

Keys: ``mode``, ``forks``, ``model``, ``baseUrl``, ``diagnostics.{policy,config,plan,task,result,provenance}``
(booleans, default on). The API key is never a setting: it is read only from the environment
(``CONDUCTOR_API_KEY`` / ``GEMINI_API_KEY``) by the engine, and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("policy", "config", "plan", "task", "result", "provenance")
SECRET_WORDS = ("key", "token", "secret", "password")


@dataclass
class Settings:
    mode: str | None = None
    forks: int | None = None
    model: str | None = None
    base_url: str | None = None
    diagnostics: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(KINDS, True))
    ignored: list[str] = field(default_factory=list)

    def update(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            return
        if isinstance(raw.get("conductor"), dict) and not ({"mode", "forks", "diagnostics"} & set(raw)):
            raw = raw["conductor"]
        for name in raw:
            if any(w in name.lower() for w in SECRET_WORDS):
                self.ignored.append(name)  # an API key in settings is ignored (and its value never logged)
        if raw.get("mode") in ("handoff", "llm"):
            self.mode = raw["mode"]
        if isinstance(raw.get("forks"), int) and not isinstance(raw.get("forks"), bool):
            self.forks = max(1, min(16, raw["forks"]))
        if isinstance(raw.get("model"), str):
            self.model = raw["model"]
        base = raw.get("baseUrl", raw.get("base_url"))
        if isinstance(base, str):
            self.base_url = base
        diags = raw.get("diagnostics")
        if isinstance(diags, bool):
            self.diagnostics = dict.fromkeys(KINDS, diags)
        elif isinstance(diags, dict):
            for kind in KINDS:
                if isinstance(diags.get(kind), bool):
                    self.diagnostics[kind] = diags[kind]

    def diagnostics_enabled(self, kind: str) -> bool:
        return self.diagnostics.get(kind, True)

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "forks": self.forks, "model": self.model, "baseUrl": self.base_url,
                "diagnostics": dict(self.diagnostics)}
