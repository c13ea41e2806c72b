"""The one door to the engine facade ``conductor.engine.api`` (the CLI uses the same functions).

The facade may not be installed in every build (it lands separately); a missing function
becomes a clear error for the command that needs it, never an import error at start-up.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from typing import Any


class EngineUnavailable(RuntimeError):
    """The engine facade (or one of its functions) is not available in this build."""


MODULE_ENV = "CONDUCTOR_ENGINE_MODULE"
"""Names another module with the facade's functions (tests use a scripted engine)."""


def function(name: str) -> Callable[..., Any]:
    module = os.environ.get(MODULE_ENV) or "conductor.engine.api"
    try:
        api = importlib.import_module(module)
    except ImportError as exc:
        raise EngineUnavailable(f"the engine facade {module} is not available ({exc})") from exc
    fn = getattr(api, name, None)
    if not callable(fn):
        raise EngineUnavailable(f"{module}.{name} is not available in this build")
    return fn


def accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call facade function ``name``; keyword arguments it does not take are left out."""
    fn = function(name)
    kwargs = {k: v for k, v in kwargs.items() if accepts(fn, k)}
    return fn(*args, **kwargs)


def try_call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Like :func:`call`, but ``None`` when the facade or the call fails (for hovers)."""
    try:
        return call(name, *args, **kwargs)
    except Exception:
        return None
