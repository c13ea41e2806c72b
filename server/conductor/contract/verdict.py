"""The verdict of one attempt, written for the agent that did it (``verdicts/step_NNN.<attempt>.verdict.json``).

Why a file of its own: after a failed attempt the task reappears in ``pending/`` (as the next
attempt) within moments; an agent must be able to tell how *its* attempt was judged. The task
names the path (``verdict_file``); the record echoes the attempt and nonce it judges.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from conductor.contract.provenance import Violation


class Verdict(BaseModel):
    """How Conductor judged one attempt of a step."""

    model_config = ConfigDict(
        extra="forbid",
        title="Conductor verdict",
        json_schema_extra={"examples": [{
            "contract_version": "2.0", "task_id": "step_001", "plan_id": "a1b2c3d4", "fork_id": "main",
            "attempt": 1, "nonce": "5f0c6b1e9d3a4c7b8e2f1a0d9c8b7a6e", "verdict": "fail",
            "reason_code": "evidence/outside-allowed-files", "reason": "notes.txt changed but is not in allowed_files",
            "violations": [{"code": "evidence/outside-allowed-files",
                            "message": "notes.txt changed but is not in allowed_files", "path": "notes.txt"}],
            "provenance": "failed/step_001.provenance.json", "decided_at": "2026-11-26T10:00:10Z"}]},
    )

    contract_version: Literal["2.0"] = Field(description="Version of the verdict contract.", examples=["2.0"])
    task_id: str = Field(pattern=r"^step_[0-9]{3,}$", description="The step.", examples=["step_001"])
    plan_id: str = Field(description="The plan.", examples=["a1b2c3d4"])
    fork_id: str = Field(description="The fork.", examples=["main"])
    attempt: int = Field(ge=1, description="The attempt judged.", examples=[1])
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$", description="That attempt's nonce.",
                       examples=["5f0c6b1e9d3a4c7b8e2f1a0d9c8b7a6e"])
    verdict: Literal["pass", "fail"] = Field(description="Conductor's judgement.", examples=["fail"])
    reason_code: str | None = Field(description="The most serious violation's code; null on pass.",
                                    examples=["evidence/outside-allowed-files"])
    reason: str = Field(description="Why, in a sentence.", examples=["all checks passed"])
    violations: list[Violation] = Field(default_factory=list, description="Every rule the attempt broke.")
    provenance: str | None = Field(description="The signed provenance record, relative to the fork's folder.",
                                   examples=["completed/step_001.provenance.json"])
    decided_at: str = Field(description="When the verdict was reached (ISO 8601, UTC).",
                            examples=["2026-11-26T10:00:10Z"])
