"""The task file an executor picks up: ``handoff/…/pending/step_NNN.task.json``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ConfidenceLevel = Literal["high", "medium", "low"]


class ConfidenceFactor(BaseModel):
    """One named input to a confidence score, shown by `conductor explain` and on hover."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Factor name.", examples=["history"])
    value: float = Field(ge=0, le=1, description="The factor's own score in [0, 1].", examples=[0.9])
    weight: float = Field(ge=0, le=1, description="Its weight in the combined score.", examples=[0.4])
    detail: str = Field(
        default="",
        description="Why the factor has this value, in a sentence.",
        examples=["4 of 5 similar steps succeeded"],
    )


class Confidence(BaseModel):
    """How likely the step is to succeed unattended, computed before execution."""

    model_config = ConfigDict(extra="forbid")

    score: float = Field(ge=0, le=1, description="Combined score in [0, 1].", examples=[0.89])
    level: ConfidenceLevel = Field(
        description="`high` (≥ caution threshold, default 0.8) runs autonomously, `medium` runs with caution, "
        "`low` (< approval threshold, default 0.5) waits for approval.",
        examples=["high"],
    )
    factors: list[ConfidenceFactor] = Field(
        default_factory=list,
        description="The named factors the score combines.",
        examples=[[{"name": "history", "value": 0.9, "weight": 0.4, "detail": "4 of 5 similar steps succeeded"}]],
    )


class Task(BaseModel):
    """One step handed to an executor. Written atomically; its checksum covers everything else."""

    model_config = ConfigDict(
        extra="forbid",
        title="Conductor task",
        json_schema_extra={
            "examples": [
                {
                    "contract_version": "1.0",
                    "task_id": "step_001",
                    "plan_id": "a1b2c3d4",
                    "fork_id": "main",
                    "instruction": "Create hello.py that prints Hello.",
                    "allowed_files": ["hello.py"],
                    "constraints": ["Do NOT modify files outside allowed_files"],
                    "protected_patterns": ["*.lock"],
                    "max_diff_lines": 500,
                    "timeout_seconds": 300,
                    "confidence": {"score": 0.89, "level": "high", "factors": []},
                    "depends_on": [],
                    "created_at": "2026-11-26T10:00:00Z",
                    "checksum": "sha256:…",
                }
            ]
        },
    )

    contract_version: Literal["1.0"] = Field(
        description="Version of the task contract this file follows.", examples=["1.0"]
    )
    task_id: str = Field(
        pattern=r"^step_[0-9]{3,}$",
        description="The step's id, also the file name stem (`step_001`).",
        examples=["step_001"],
    )
    plan_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="Id of the plan the step belongs to (folder `plan_<id>`).",
        examples=["a1b2c3d4"],
    )
    fork_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="Id of the fork (strategy) the step belongs to (folder `fork_<id>`).",
        examples=["main"],
    )
    title: str = Field(default="", description="One-line summary of the step.", examples=["Add hello.py"])
    workspace: str = Field(
        default=".",
        description="Folder the executor works in, relative to the project root (`.` for the project itself, "
        "or the fork's git worktree). `allowed_files` are relative to it.",
        examples=[".", ".conductor/worktrees/a1b2c3d4/fork_b"],
    )
    instruction: str = Field(
        min_length=1,
        description="What the executor must do, in plain language.",
        examples=["Create hello.py that prints Hello."],
    )
    allowed_files: list[str] = Field(
        description="Workspace-relative paths or globs the executor may create, modify or delete. "
        "Anything else changed fails the step.",
        examples=[["hello.py", "tests/test_hello.py"]],
    )
    constraints: list[str] = Field(
        default_factory=list,
        description="Rules the executor must follow: the effective policy's global constraints and the step's own.",
        examples=[["Do NOT modify files outside allowed_files"]],
    )
    protected_patterns: list[str] = Field(
        default_factory=list,
        description="The effective policy's protected patterns, copied so the executor knows them.",
        examples=[["*.lock"]],
    )
    max_diff_lines: int = Field(ge=0, description="Most lines the step may change (effective policy).", examples=[500])
    timeout_seconds: int = Field(
        ge=1, description="Seconds from claim to result before the step fails as a timeout.", examples=[300]
    )
    confidence: Confidence = Field(description="Pre-execution confidence.")
    depends_on: list[str] = Field(
        default_factory=list, description="Task ids that completed before this one.", examples=[["step_001"]]
    )
    kind: Literal["step", "plan"] = Field(
        default="step",
        description="`step` edits files; `plan` asks the executor for a plan document as its result "
        "(planning handed off when no LLM is configured).",
        examples=["step"],
    )
    created_at: str = Field(
        description="When Conductor wrote the task (ISO 8601, UTC).", examples=["2026-11-26T10:00:00Z"]
    )
    checksum: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="`sha256:` + hex SHA-256 of the canonical JSON of every other field. "
        "A task edited after writing is refused.",
        examples=["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )
