"""The engine API as the language server's modules see it: imported when first used, not at start-up.

``conductor.engine.api`` brings pydantic, the policy models, the journal and the views (~0.3 s
on this machine's kind); the first diagnostics of a document need none of them. Every feature
module binds ``api`` to :data:`api` (typed as the real module for mypy), and the first attribute
read imports the module, under Python's import lock, so worker threads may race for it safely.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

MODULE = "conductor.engine.api"


class _OnFirstUse:
    """Stands for a module; every attribute read is the module's own (never cached here, so a test
    that patches the module is seen)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._module(), attr)

    def __repr__(self) -> str:
        return f"<{self._name}, imported on first use>"


api: Any = _OnFirstUse(MODULE)
