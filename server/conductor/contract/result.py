"""The result file an executor writes beside its claimed task: ``step_NNN.result.json``.

Contract 2.0 results echo the attempt's ``nonce`` from the task (a result for another attempt,
or forged before the claim, is refused) and may say exactly what ran (``agent_run``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conductor.contract.task import V2_MARK


class AgentRun(BaseModel):
    """What really ran for this result: the agent program, its version, the command and how it ended."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(description="The agent program or preset name.", examples=["aider"])
    version: str | None = Field(default=None, description="What `<agent> --version` printed.", examples=["0.86.1"])
    command: str = Field(
        default="", description="The exact command line, secrets masked.", examples=["aider --yes-always --message …"]
    )
    exit_code: int | None = Field(default=None, description="Its exit code (null: killed at the timeout).",
                                  examples=[0])
    duration_seconds: float | None = Field(default=None, ge=0, description="How long it ran.", examples=[9.8])


class Result(BaseModel):
    """What the executor says it did. Conductor compares it with the evidence, never trusts it."""

    model_config = ConfigDict(
        extra="forbid",
        title="Conductor result",
        json_schema_extra={
            "examples": [
                {
                    "contract_version": "2.0",
                    "task_id": "step_001",
                    "nonce": "5f0c6b1e9d3a4c7b8e2f1a0d9c8b7a6e",
                    "status": "completed",
                    "files_changed": ["hello.py"],
                    "summary": "Created hello.py.",
                    "executor": "conductor-agent@host:1234",
                }
            ],
            "allOf": [{"if": {"properties": {"contract_version": V2_MARK}}, "then": {"required": ["nonce"]}}],
        },
    )

    contract_version: Literal["1.0", "2.0"] = Field(
        description="Version of the result contract: the task's own `contract_version`.", examples=["2.0"]
    )
    task_id: str = Field(
        pattern=r"^step_[0-9]{3,}$", description="The task this result answers.", examples=["step_001"]
    )
    nonce: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="The task's `nonce`, echoed: it ties the result to the attempt it answers (required in 2.0).",
        examples=["5f0c6b1e9d3a4c7b8e2f1a0d9c8b7a6e"],
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
    agent_run: AgentRun | None = Field(
        default=None,
        description="What really ran (agent, version, command with secrets masked, exit code, duration).",
        examples=[{"agent": "aider", "version": "0.86.1", "command": "aider --message …", "exit_code": 0,
                   "duration_seconds": 9.8}],
    )

    @model_validator(mode="after")
    def _nonce_in_v2(self) -> Result:
        if self.contract_version == "2.0" and self.nonce is None:
            raise ValueError("a contract 2.0 result must echo the task's nonce")
        return self

    @classmethod
    def answering(cls, task: Any, **fields: Any) -> Result:
        """A result for ``task`` (a Task, or a task file's JSON body): its contract version and nonce echoed."""
        get = task.get if isinstance(task, dict) else lambda name, default=None: getattr(task, name, default)
        version = get("contract_version", "2.0")
        nonce = get("nonce", None)
        if version not in ("1.0", "2.0") or (version == "2.0" and not isinstance(nonce, str)):
            version, nonce = "1.0", None
        return cls(contract_version=version, nonce=nonce if version == "2.0" else None, **fields)
