"""The result file an executor writes beside its claimed task: ``step_NNN.result.json``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Result(BaseModel):
    """What the executor says it did. Conductor compares it with the evidence, never trusts it."""

    model_config = ConfigDict(
        extra="forbid",
        title="Conductor result",
        json_schema_extra={
            "examples": [
                {
                    "contract_version": "1.0",
                    "task_id": "step_001",
                    "status": "completed",
                    "files_changed": ["hello.py"],
                    "summary": "Created hello.py.",
                    "executor": "conductor-agent@host:1234",
                }
            ]
        },
    )

    contract_version: Literal["1.0"] = Field(description="Version of the result contract.", examples=["1.0"])
    task_id: str = Field(
        pattern=r"^step_[0-9]{3,}$", description="The task this result answers.", examples=["step_001"]
    )
    status: Literal["completed", "failed"] = Field(
        description="`completed` if the executor believes it did the work, `failed` if it gave up.",
        examples=["completed"],
    )
    files_changed: list[str] = Field(
        default_factory=list,
        description="Files the executor says it changed. Compared with the files that really changed.",
        examples=[["hello.py"]],
    )
    summary: str = Field(default="", description="What was done, in a few sentences.", examples=["Created hello.py."])
    error: str | None = Field(
        default=None, description="Why the executor failed, when `status` is `failed`.", examples=["tests do not pass"]
    )
    executor: str = Field(
        default="unknown",
        description="Identity of the executor (agent name, host, process).",
        examples=["conductor-agent@host:1234"],
    )
    started_at: str | None = Field(
        default=None, description="When work started (ISO 8601).", examples=["2026-11-26T10:00:01Z"]
    )
    finished_at: str | None = Field(
        default=None, description="When work finished (ISO 8601).", examples=["2026-11-26T10:00:09Z"]
    )
    plan: dict[str, Any] | None = Field(
        default=None,
        description="For a `plan` task: the plan document (see plan.schema.json).",
        examples=[None],
    )
