"""Signed provenance of one step (``step_NNN.provenance.json``): an in-toto Statement in a DSSE envelope.

The file is a DSSE envelope (:class:`ProvenanceEnvelope`, payload type
``application/vnd.in-toto+json``) signed with the project's Ed25519 key. Its payload is an
in-toto Statement v1 (:class:`ProvenanceStatement`): the subjects are the step's output
files (and its commit, when known) with their digests; the predicate
(:class:`Provenance`, type :data:`PREDICATE_TYPE`) binds the task (by digest), the policy
(by hash), the files before and after, the evidence, the verdict, the executor, the times,
the previous record of the fork (a chain) and the audit-log line of the verdict.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://conductor.dev/provenance/step/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


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


class AuditAnchor(BaseModel):
    """The audit-log line the record is anchored to, so truncating the audit log is detected."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=0, description="Sequence number of the fork's audit.log line (`step.verified`).", examples=[7])
    digest: str = Field(description="That line's chain digest.", examples=["5d41402a…"])


class Provenance(BaseModel):
    """What one step did and how it was judged: the predicate of the step's in-toto Statement."""

    model_config = ConfigDict(extra="forbid", title="Conductor step provenance predicate")

    contract_version: Literal["1.0", "2.0"] = Field(description="Version of the provenance contract.",
                                                    examples=["2.0"])
    task_id: str = Field(description="The step.", examples=["step_001"])
    plan_id: str = Field(description="The plan.", examples=["a1b2c3d4"])
    fork_id: str = Field(description="The fork.", examples=["main"])
    task_digest: str = Field(description="SHA-256 of the task file's bytes as handed off.", examples=["9f86d081…"])
    result_digest: str | None = Field(description="SHA-256 of the result file's bytes.", examples=["…"])
    policy_hash: str | None = Field(default=None, description="Hash of the effective policy the step was judged "
                                    "by (as pinned when the plan started), when known.", examples=["sha256:…"])
    commit: str | None = Field(default=None, description="The git commit Conductor built from the verified tree, "
                               "when known at signing time.", examples=[None])
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
        description="SHA-256 (hex) of the previous provenance envelope of this fork (its JSON with sorted keys, "
        "compact); null for the first.",
        examples=[None],
    )
    audit_anchor: AuditAnchor | None = Field(
        default=None,
        description="The fork's audit.log line recording this verdict (seq + digest); `conductor verify` checks "
        "it is still there, so deleting the last audit lines is detected.",
    )


class Subject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A workspace-relative file path, or `git-commit` for the step's commit.",
                      examples=["hello.py"])
    digest: dict[str, str] = Field(description="Digest set: `sha256` (hex) for files, `gitCommit` for the commit.",
                                   examples=[{"sha256": "2cf24dba…"}])


class ProvenanceStatement(BaseModel):
    """The payload of a step's provenance envelope: an in-toto Statement v1."""

    model_config = ConfigDict(extra="forbid", title="Conductor provenance statement", populate_by_name=True)

    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type", description="in-toto Statement v1.",
                                                                examples=["https://in-toto.io/Statement/v1"])
    subject: list[Subject] = Field(min_length=1, description="The step's output files (and commit) with digests.")
    predicateType: Literal["https://conductor.dev/provenance/step/v1"] = Field(
        description="What the predicate is.", examples=["https://conductor.dev/provenance/step/v1"])
    predicate: Provenance = Field(description="Conductor's record of the step.")


class DsseSignature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keyid: str = Field(description="SHA-256 (hex) of the raw Ed25519 public key; must be pinned in "
                       "`.conductor/trust.json`.", examples=["3f2a…"])
    sig: str = Field(description="Ed25519 signature over PAE(payloadType, payload), base64.", examples=["…"])


class ProvenanceEnvelope(BaseModel):
    """Signed provenance of one step: a DSSE envelope around an in-toto Statement."""

    model_config = ConfigDict(extra="forbid", title="Conductor provenance")

    payloadType: Literal["application/vnd.in-toto+json"] = Field(
        description="DSSE payload type.", examples=[PAYLOAD_TYPE])
    payload: str = Field(description="The in-toto Statement (provenance-statement.schema.json), JSON, base64.",
                         examples=["eyJfdHlwZSI6…"])
    signatures: list[DsseSignature] = Field(min_length=1, description="Signatures by the project key.")


def subjects_of(predicate: dict[str, Any]) -> list[dict[str, Any]]:
    """The Statement's subjects for a predicate: its products that exist, and its commit."""
    subjects = [{"name": p["path"], "digest": {"sha256": p["sha256"]}}
                for p in predicate.get("products") or [] if p.get("sha256")]
    if predicate.get("commit"):
        subjects.append({"name": "git-commit", "digest": {"gitCommit": predicate["commit"]}})
    if not subjects:  # a statement needs a subject: a step that left no file is about its task
        task_digest = str(predicate.get("task_digest") or "")
        subjects.append({"name": f"task:{predicate.get('task_id')}", "digest": {"sha256": task_digest}})
    return subjects


def statement_of(predicate: dict[str, Any]) -> dict[str, Any]:
    return {"_type": STATEMENT_TYPE, "subject": subjects_of(predicate), "predicateType": PREDICATE_TYPE,
            "predicate": predicate}


def decode_predicate(document: Any) -> dict[str, Any] | None:
    """The predicate of a provenance file's JSON, *signature not checked* (for display); ``None`` if none.

    A pre-envelope (contract 1.0) record is returned as it is.
    """
    if not isinstance(document, dict):
        return None
    if "payload" not in document:
        return document if "verdict" in document else None
    try:
        statement = json.loads(base64.b64decode(str(document["payload"]), validate=True))
    except (ValueError, binascii.Error):
        return None
    predicate = statement.get("predicate") if isinstance(statement, dict) else None
    return predicate if isinstance(predicate, dict) else None
