"""The published contract: pydantic models of every file Conductor and agents exchange.

These models are the single source of truth. ``schemas/*.schema.json`` are generated from
them (``python -m conductor.contract.schemas --write``) and a test fails when they drift.
"""

from conductor.contract.checksum import canonical_json, sha256_hex, task_checksum
from conductor.contract.config import Config
from conductor.contract.plan import Plan, PlanStep
from conductor.contract.policy import Policy
from conductor.contract.provenance import Provenance
from conductor.contract.result import Result
from conductor.contract.task import Confidence, ConfidenceFactor, Task

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
