"""The journal's vocabulary: every event type, the fields its payload must carry, and the event record.

Why it exists: status, metrics, explanations, resume and replay are all computed from the
journal alone, so the event names and payloads are a contract between the engine that
writes them and the projections that read them. Appending an unknown type or leaving out a
required field is refused at write time, not discovered at replay time.

Stored line (one JSON object per line, hash-chained by :class:`conductor.storage.ChainLog`)::

    {"seq": 7, "prev": "…", "digest": "…", "ts": "2026-11-26T10:00:00.123456Z",
     "type": "step.completed", "plan_id": "a1b2c3d4", "data": {"fork_id": "main", "step_id": "step_001"}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Event type → payload fields that must be present (more fields are allowed).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "plan.created": ("goal", "mode", "forks", "config"),
    "policy.effective": ("policy", "origins"),  # fork_id / step_id optional: absent = plan level
    "llm.call": ("purpose", "request_digest", "model", "usage", "response_text"),
    "plan.planned": ("fork_id", "strategy", "plan"),
    "fork.created": ("fork_id", "branch", "worktree"),
    "step.confidence": ("fork_id", "step_id", "confidence"),
    "step.waiting_approval": ("fork_id", "step_id"),
    "step.approved": ("fork_id", "step_id", "by"),
    "step.rejected": ("fork_id", "step_id", "by"),
    "step.handed_off": ("fork_id", "step_id", "task_path", "checksum", "attempt"),
    "step.claimed": ("fork_id", "step_id", "executor"),
    "step.verified": ("fork_id", "step_id", "verdict", "reason", "evidence", "provenance_path"),
    "step.completed": ("fork_id", "step_id"),
    "step.failed": ("fork_id", "step_id", "cause", "reason"),
    "step.repair_planned": ("fork_id", "step_id", "attempt", "instruction", "allowed_files", "similar_fixes"),
    "step.forked": ("fork_id", "step_id", "variants"),  # mid-plan fork of one LOW-confidence step
    "step.variant_chosen": ("fork_id", "step_id", "variant", "reason"),
    "fork.scored": ("fork_id", "score", "parts"),
    "plan.merged": ("fork_id", "branch", "commit"),
    "plan.halted": ("reason",),
    "plan.resumed": (),
    "plan.finished": ("outcome",),
}
EVENT_TYPES = tuple(EVENT_FIELDS)


class JournalError(ValueError):
    """An event that cannot be journaled as given (unknown type, missing field, not JSON)."""


def check_event(event_type: str, data: Mapping[str, Any]) -> None:
    """Raise :class:`JournalError` unless ``data`` is a complete payload for ``event_type``."""
    if event_type not in EVENT_FIELDS:
        raise JournalError(f"unknown journal event type {event_type!r}; known types: {', '.join(EVENT_TYPES)}")
    missing = [name for name in EVENT_FIELDS[event_type] if name not in data]
    if missing:
        raise JournalError(f"{event_type} event is missing {', '.join(missing)}")


class Event(BaseModel):
    """One journal line, as read back."""

    model_config = ConfigDict(extra="allow", frozen=True)

    seq: int = Field(description="0-based position in the journal.")
    type: str = Field(description="One of EVENT_TYPES.")
    ts: str = Field(default="", description="When it was appended (ISO 8601, UTC).")
    plan_id: str = Field(default="", description="The plan the journal belongs to.")
    data: dict[str, Any] = Field(default_factory=dict, description="The payload.")
    prev: str = Field(default="", description="Digest of the line before.")
    digest: str = Field(default="", description="Digest of this line.")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Event:
        return cls(
            seq=record["seq"],
            type=record["type"],
            ts=record.get("ts", ""),
            plan_id=record.get("plan_id", ""),
            data=record.get("data") or {},
            prev=record.get("prev", ""),
            digest=record.get("digest", ""),
        )

    @property
    def fork_id(self) -> str | None:
        value = self.data.get("fork_id")
        return str(value) if value is not None else None

    @property
    def step_id(self) -> str | None:
        value = self.data.get("step_id")
        return str(value) if value is not None else None
