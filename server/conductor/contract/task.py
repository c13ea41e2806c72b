"""The task file an executor picks up: ``handoff/…/pending/step_NNN.task.json``.

Contract 2.0 (written by Conductor now) carries everything an agent needs and everything
that will be enforced: the attempt and its nonce, the absolute workspace of the attempt's own
working copy, every limit, the verification commands and where the verdict will be written.
Contract 1.0 tasks (relative workspace, no nonce) are still read.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conductor.contract.policy import VerificationCommand

CONTRACT_VERSION = "2.0"
V2_REQUIRED = ("attempt", "nonce", "max_files_changed", "verification", "verdict_file")
V2_MARK: dict[str, Any] = {"const": "2.0", "description": "Contract 2.0 requires more fields.", "examples": ["2.0"]}

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


class SandboxRules(BaseModel):
    """How an agent Conductor starts for this task must be confined (the effective policy's behavior keys)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "required", "off"] = Field(
        description="`behavior.sandbox`: `required` refuses to run the agent without bubblewrap.", examples=["auto"])
    network: Literal["allow", "deny"] = Field(description="`behavior.network` inside the sandbox.",
                                              examples=["allow"])


class Task(BaseModel):
    """One step handed to an executor. Written atomically; its checksum covers everything else."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        title="Conductor task",
        json_schema_extra={
            "examples": [
                {
                    "contract_version": "2.0",
                    "task_id": "step_001",
                    "plan_id": "a1b2c3d4",
                    "fork_id": "main",
                    "attempt": 1,
                    "nonce": "5f0c6b1e9d3a4c7b8e2f1a0d9c8b7a6e",
                    "workspace": "/home/me/proj/.conductor/attempts/a1b2c3d4/main/step_001.1",
                    "instruction": "Create hello.py that prints Hello.",
                    "allowed_files": ["hello.py"],
                    "constraints": ["Do NOT modify files outside allowed_files"],
                    "protected_patterns": ["*.lock"],
                    "max_diff_lines": 500,
                    "max_files_changed": 50,
                    "timeout_seconds": 300,
                    "verification": [{"name": "unit tests", "run": "python -m pytest -q", "timeout_seconds": 120}],
                    "verdict_file": "/home/me/proj/.conductor/handoff/plan_a1b2c3d4/fork_main/verdicts/"
                    "step_001.1.verdict.json",
                    "confidence": {"score": 0.89, "level": "high", "factors": []},
                    "depends_on": [],
                    "created_at": "2026-11-26T10:00:00Z",
                    "checksum": "sha256:…",
                }
            ],
            "allOf": [{"if": {"properties": {"contract_version": V2_MARK}},
                       "then": {"required": list(V2_REQUIRED)}}],
        },
    )

    schema_uri: str | None = Field(
        default=None,
        alias="$schema",
        description="Where this file's schema is, offline: a `file:` URI of the project's "
        "`.conductor/schemas/task.schema.json` (written by `conductor init`; the result, plan and verdict schemas are "
        "beside it). Covered by the checksum like every other field.",
        examples=["file:///home/me/proj/.conductor/schemas/task.schema.json"],
    )
    contract_version: Literal["1.0", "2.0"] = Field(
        description="Version of the task contract this file follows (Conductor writes 2.0; 1.0 is still read).",
        examples=["2.0"],
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
    attempt: int | None = Field(
        default=None,
        ge=1,
        description="Which attempt of the step this is (1, then 2, … after a failed attempt is repaired).",
        examples=[1],
    )
    nonce: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="A fresh random value for this attempt. The result must echo it; a result with another "
        "nonce (a stale or forged one) is refused.",
        examples=["5f0c6b1e9d3a4c7b8e2f1a0d9c8b7a6e"],
    )
    workspace: str = Field(
        default=".",
        description="Absolute path of the folder the executor works in: the attempt's own working copy, a "
        "throwaway git repository checked out at the fork's head for this attempt alone (you may commit in it; "
        "only the resulting file tree counts). `allowed_files` are relative to it. (Contract 1.0: relative to "
        "the project root.)",
        examples=["/home/me/proj/.conductor/attempts/a1b2c3d4/main/step_001.1"],
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
    max_files_changed: int | None = Field(
        default=None, ge=0, description="Most files the step may create, modify or delete (effective policy).",
        examples=[50],
    )
    timeout_seconds: int = Field(
        ge=1, description="Seconds from claim to result before the step fails as a timeout.", examples=[300]
    )
    verification: list[VerificationCommand] | None = Field(
        default=None,
        description="Commands Conductor runs on the step's verified file tree after the result; each must exit 0 "
        "within its timeout for the step to pass. Run them yourself before you finish.",
        examples=[[{"name": "unit tests", "run": "python -m pytest -q", "timeout_seconds": 120}]],
    )
    verdict_file: str | None = Field(
        default=None,
        description="Absolute path where Conductor writes this attempt's verdict (schemas/verdict.schema.json) "
        "once it has judged the result.",
        examples=["/home/me/proj/.conductor/handoff/plan_a1b2c3d4/fork_main/verdicts/step_001.1.verdict.json"],
    )
    sandbox: SandboxRules | None = Field(
        default=None,
        description="The sandbox an agent Conductor starts must run in (`conductor agent`); an IDE agent may "
        "ignore it.",
        examples=[{"mode": "auto", "network": "allow"}],
    )
    base_commit: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{40}$",
        description="The commit the workspace was checked out at (the fork's head after the step's dependencies).",
        examples=["4b825dc642cb6eb9a060e54bf8d69288fbee4904"],
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
        description="`sha256:` + hex SHA-256 of every other field serialized by RFC 8785 (JSON Canonicalization "
        "Scheme; contract 1.0: Python's sorted compact json.dumps). A task edited after writing is refused.",
        examples=["sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )

    @model_validator(mode="after")
    def _complete_for_its_version(self) -> Task:
        if self.contract_version == CONTRACT_VERSION:
            missing = [name for name in V2_REQUIRED if getattr(self, name) is None]
            if missing:
                raise ValueError(f"a contract {CONTRACT_VERSION} task must carry {', '.join(missing)}")
        return self

    def body(self) -> dict[str, Any]:
        """The task as JSON, fields of the other contract version left out."""
        data = self.model_dump(mode="json", by_alias=True)
        if data.get("$schema") is None:
            data.pop("$schema", None)
        if self.contract_version != CONTRACT_VERSION:
            for name in (*V2_REQUIRED, "base_commit", "sandbox"):
                if data.get(name) is None:
                    data.pop(name, None)
        else:
            for name in ("base_commit", "sandbox"):
                if data.get(name) is None:
                    data.pop(name, None)
        return data
