"""The published contract: pydantic models of every file Conductor and agents exchange.

These models are the single source of truth. ``schemas/*.schema.json`` are generated from
them (``python -m conductor.contract.schemas --write``) and a test fails when they drift.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor.contract.checksum import canonical_json, sha256_hex, task_checksum
    from conductor.contract.config import Config
    from conductor.contract.plan import Plan, PlanStep
    from conductor.contract.policy import Policy
    from conductor.contract.provenance import Provenance
    from conductor.contract.result import Result
    from conductor.contract.task import Confidence, ConfidenceFactor, Task

_HOME = {"canonical_json": "checksum", "sha256_hex": "checksum", "task_checksum": "checksum", "Config": "config",
         "Plan": "plan", "PlanStep": "plan", "Policy": "policy", "Provenance": "provenance", "Result": "result",
         "Confidence": "task", "ConfidenceFactor": "task", "Task": "task"}
"""Where each re-exported name lives. They load on first use (PEP 562): importing one submodule,
such as ``contract.globs`` on the diagnostics path, must not build every pydantic model (~0.2 s)."""


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib  # lazy: only when a re-exported name is first asked for

    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Confidence",
    "ConfidenceFactor",
    "Config",
    "Plan",
    "PlanStep",
    "Policy",
    "Provenance",
    "Result",
    "Task",
    "canonical_json",
    "sha256_hex",
    "task_checksum",
]
