"""Signed provenance of one step (``step_NNN.provenance.json``), in the in-toto/SLSA spirit.

It binds the task (by digest), the files before (materials) and after (products), the
evidence and the verdict, links to the previous record of the fork (a chain), and is signed
with the project's Ed25519 key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FileDigest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Workspace-relative path.", examples=["hello.py"])
    sha256: str | None = Field(
        description="Hex SHA-256 of the content; null when the file does not exist.", examples=[None]
    )


class CommandEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The verification command's name.", examples=["unit tests"])
    command: str = Field(description="The command line that ran.", examples=["python -m pytest -q"])
    exit_code: int | None = Field(description="Exit code; null when it timed out.", examples=[0])
    timed_out: bool = Field(description="Whether it was killed at its timeout.", examples=[False])
    duration_seconds: float = Field(description="Wall time.", examples=[1.2])
    output_sha256: str = Field(description="SHA-256 of its combined output.", examples=["e3b0c442…"])
    output_tail: str = Field(default="", description="Last lines of its output, for people.", examples=["3 passed"])


class Violation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Stable violation code.", examples=["evidence/outside-allowed-files"])
    message: str = Field(description="What was violated.", examples=["notes.txt changed but is not in allowed_files"])
    path: str | None = Field(default=None, description="The file concerned, if any.", examples=["notes.txt"])


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    created: list[str] = Field(
        default_factory=list, description="Files that exist now and did not before.", examples=[["hello.py"]]
    )
    modified: list[str] = Field(default_factory=list, description="Files whose content changed.", examples=[[]])
    deleted: list[str] = Field(
        default_factory=list, description="Files that existed before and are gone.", examples=[[]]
    )
    mode_changed: list[str] = Field(
        default_factory=list, description="Files whose executable bit changed.", examples=[["run.sh"]]
    )
    type_changed: list[str] = Field(
        default_factory=list, description="Paths that changed type (file, symlink, folder).", examples=[[]]
    )
    outside_changes: list[str] = Field(
        default_factory=list,
        description="Paths outside the attempt's working copy that changed while it ran (the project's checkout, "
        "Conductor's files, shared git state).",
        examples=[[]],
    )
    base_commit: str | None = Field(
        default=None, description="The commit the attempt's working copy started from.", examples=["4b825dc6…"]
    )
    commit: str | None = Field(
        default=None, description="The step's commit, built by Conductor from the verified file tree.",
        examples=["9c1185a5…"],
    )
    diff_lines: int = Field(description="Lines added plus removed, computed by Conductor.", examples=[3])
    reported_files: list[str] = Field(
        default_factory=list, description="What the executor claimed in `files_changed`.", examples=[["hello.py"]]
    )
    unreported_changes: list[str] = Field(
        default_factory=list, description="Files that changed but the executor did not report.", examples=[[]]
    )
    checksum_ok: bool = Field(description="Whether the task file still matched its checksum.", examples=[True])
    verification: list[CommandEvidence] = Field(default_factory=list, description="Verification commands and outcomes.")
    violations: list[Violation] = Field(default_factory=list, description="Every rule the step broke.")


class Signature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["ed25519"] = Field(description="Signature algorithm.", examples=["ed25519"])
    key_id: str = Field(description="SHA-256 of the raw public key, hex.", examples=["3f2a…"])
    public_key: str = Field(description="Raw Ed25519 public key, base64.", examples=["MCowBQYDK2VwAyEA…"])
    value: str = Field(
        description="Signature over the canonical JSON of the record without `signature`, base64.", examples=["…"]
    )


class AuditAnchor(BaseModel):
    """The audit-log line the record is anchored to, so truncating the audit log is detected."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=0, description="Sequence number of the fork's audit.log line (`step.verified`).", examples=[7])
    digest: str = Field(description="That line's chain digest.", examples=["5d41402a…"])


class Provenance(BaseModel):
    """Signed record of what one step did and how it was judged."""

    model_config = ConfigDict(extra="forbid", title="Conductor provenance")

    contract_version: Literal["1.0"] = Field(description="Version of the provenance contract.", examples=["1.0"])
    task_id: str = Field(description="The step.", examples=["step_001"])
    plan_id: str = Field(description="The plan.", examples=["a1b2c3d4"])
    fork_id: str = Field(description="The fork.", examples=["main"])
    task_digest: str = Field(description="SHA-256 of the task file's bytes as handed off.", examples=["9f86d081…"])
    result_digest: str | None = Field(description="SHA-256 of the result file's bytes.", examples=["…"])
    executor: str = Field(
        description="Who executed the step (from the result, or `timeout`).", examples=["conductor-agent@host:1"]
    )
    materials: list[FileDigest] = Field(description="Relevant files before hand-off.")
    products: list[FileDigest] = Field(description="The same and any changed files after the result.")
    evidence: Evidence = Field(description="What Conductor measured.")
    verdict: Literal["pass", "fail"] = Field(description="Conductor's judgement.", examples=["pass"])
    reason: str = Field(description="Why, in a sentence.", examples=["all checks passed"])
    started_at: str = Field(description="When the task was handed off (ISO 8601).", examples=["2026-11-26T10:00:00Z"])
    finished_at: str = Field(description="When the verdict was reached (ISO 8601).", examples=["2026-11-26T10:00:10Z"])
    previous_digest: str | None = Field(
        description="SHA-256 of the previous provenance record of this fork (canonical JSON incl. signature); "
        "null for the first.",
        examples=[None],
    )
    audit_anchor: AuditAnchor | None = Field(
        default=None,
        description="The fork's audit.log line recording this verdict (seq + digest); `conductor verify` checks "
        "it is still there, so deleting the last audit lines is detected.",
    )
    signature: Signature | None = Field(default=None, description="Ed25519 signature by the project key.")
