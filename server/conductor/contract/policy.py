"""The policy document (``.conductor/policy.yaml``) and the policy block of plans and steps.

The same shape is used at every level (Project → Plan → Step); how levels merge lives in
``conductor.policy.merge``. Every field has a description and an example because the
language server's hovers and completions are built from the generated schema.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# re-exported: they live in contract.defaults, which validation imports without pydantic
from conductor.contract.defaults import ALWAYS_PROTECTED as ALWAYS_PROTECTED
from conductor.contract.defaults import DEFAULTS as DEFAULTS


class VerificationCommand(BaseModel):
    """A command Conductor runs after a step to gather evidence (for example the test suite)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="Short name shown in evidence and in `conductor explain`.",
        examples=["unit tests"],
        min_length=1,
    )
    run: str = Field(
        description="Shell command, run in the step's workspace. Exit code 0 means it passed.",
        examples=["python -m pytest -q"],
        min_length=1,
    )
    timeout_seconds: int = Field(
        default=120,
        ge=1,
        le=86400,
        description="Seconds before the command is killed and counted as failed.",
        examples=[120],
    )
    pass_env: list[str] = Field(
        default_factory=list,
        description="Secret environment variables this command needs, passed through by name (every other "
        "`*_API_KEY`, `*_TOKEN`, `*_SECRET`… and the model key are removed). A plan written by an agent may "
        "only ask for this; a person approves it.",
        examples=[["NPM_TOKEN"]],
    )


class FileRules(BaseModel):
    """Which files agents may never touch, and which protections a level releases on purpose."""

    model_config = ConfigDict(extra="forbid")

    protected_patterns: list[str] = Field(
        default_factory=list,
        description=(
            "Glob patterns (gitignore syntax: `*`, `**`, `?`, `[abc]`; a pattern without `/` "
            "matches at any depth) of files no step may create, modify or delete. Patterns "
            "accumulate across levels."
        ),
        examples=[["*.lock", "migrations/*", ".github/**"]],
    )
    unprotect: list[str] = Field(
        default_factory=list,
        description=(
            "Protected patterns set by an earlier level that this level explicitly releases. "
            "The only way a later level can drop a protection; it is recorded with its line."
        ),
        examples=[["docs/generated/*"]],
    )


class Behavior(BaseModel):
    """Limits and thresholds that govern execution. Every limit is an upper bound."""

    model_config = ConfigDict(extra="forbid")

    max_diff_lines: int | None = Field(
        default=None,
        ge=0,
        le=100_000_000,
        description="Most lines (added + removed) one step may change across all files.",
        examples=[500],
    )
    max_files_changed: int | None = Field(
        default=None,
        ge=0,
        le=10_000_000,
        description="Most files one step may create, modify or delete.",
        examples=[20],
    )
    timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=604800,
        description="Seconds an executor has to finish a claimed step before it fails as a timeout.",
        examples=[300],
    )
    max_repairs: int | None = Field(
        default=None,
        ge=0,
        le=20,
        description="How many times a failed step is re-planned and retried before the plan halts.",
        examples=[2],
    )
    approval_below: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=("Confidence below which a step is LOW and waits for a human approval (`conductor approve`)."),
        examples=[0.5],
    )
    caution_below: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Confidence below which a step is MEDIUM (runs, flagged for caution); at or above it, HIGH.",
        examples=[0.8],
    )
    fork_below: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "Confidence below which a step forks mid-plan: two variants run at once, each in its own git "
            "worktree, and the one with the best evidence is kept (0 or unset: never)."
        ),
        examples=[0.6],
    )
    allow_symlinks: bool | None = Field(
        default=None,
        description="Whether a step may create or change a symlink that stays inside its workspace (a symlink "
        "that resolves outside it is always refused). Default false.",
        examples=[False],
    )
    network: Literal["allow", "deny"] | None = Field(
        default=None,
        description="Network for agents Conductor starts in its sandbox (`conductor agent`): `allow` (default) "
        "or `deny` (no network at all, loopback included; the agent's model endpoint too).",
        examples=["deny"],
    )
    sandbox: Literal["auto", "required", "off"] | None = Field(
        default=None,
        description="Bubblewrap sandbox for agents Conductor starts: `auto` (default; unsandboxed with a "
        "warning when bwrap or user namespaces are missing), `required` (refuse to run without it), `off`.",
        examples=["required"],
    )
    allow_loosen: list[str] = Field(
        default_factory=list,
        description=(
            "Names of limits this level may loosen compared to an earlier level (for example "
            "`max_diff_lines`). Without it, a looser value is refused and the earlier one stays."
        ),
        examples=[["max_diff_lines"]],
    )


class Policy(BaseModel):
    """A policy level: project policy file, a plan's `policy` block, or a step's `policy` block."""

    model_config = ConfigDict(
        extra="forbid",
        title="Conductor policy",
        json_schema_extra={
            "examples": [
                {
                    "global_constraints": ["Always include tests for new functions"],
                    "file_rules": {"protected_patterns": ["*.lock", "migrations/*"]},
                    "behavior": {"max_diff_lines": 500, "timeout_seconds": 300},
                }
            ]
        },
    )

    global_constraints: list[str] = Field(
        default_factory=list,
        description="Plain-language rules copied into every task's `constraints`. They accumulate across levels.",
        examples=[["Never modify files in /core", "Always include tests for new functions"]],
    )
    file_rules: FileRules = Field(
        default_factory=FileRules,
        description="File protections: patterns no step may touch.",
        examples=[{"protected_patterns": ["*.lock", "migrations/*"]}],
    )
    behavior: Behavior = Field(
        default_factory=Behavior,
        description="Limits (diff size, timeout, repairs) and confidence thresholds.",
        examples=[{"max_diff_lines": 500, "timeout_seconds": 300}],
    )
    verification: list[VerificationCommand] = Field(
        default_factory=list,
        description="Commands run after every step as evidence (for example the project's tests). They accumulate.",
        examples=[[{"name": "unit tests", "run": "python -m pytest -q", "timeout_seconds": 120}]],
    )

