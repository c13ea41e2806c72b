"""The prompts Conductor sends, and the JSON Schema each answer must match.

Why a separate module: prompts change more often than the client, they decide what the
request digest is (so replay depends on them being deterministic), and reviewers should
be able to read every word Conductor says to a model in one place. Each builder returns a
:class:`Prompt` — messages, schema, purpose — that goes straight into
``StructuredLLM.complete_json(prompt.messages, prompt.schema, prompt.purpose)``.

Inputs are bounded (file lists and file contents are truncated with a visible marker) so a
large workspace cannot blow the context window; truncation is deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conductor.contract import schemas
from conductor.contract.plan import PlanStep

MAX_WORKSPACE_FILES = 400
MAX_FILE_CHARS = 60_000
MAX_EVIDENCE_CHARS = 6_000

SYSTEM_ROLE = (
    "You are the planner of Conductor, an orchestration runtime for AI coding agents. "
    "Conductor plans, agents execute, files are the contract. Every step you write is handed "
    "to an executor that may touch ONLY the step's allowed_files, so list every file a step "
    "must create or change, and nothing else. Prefer small, verifiable steps."
)


@dataclass(frozen=True)
class Prompt:
    """One request: what to send, the schema the answer must match, and why it is asked."""

    purpose: str
    messages: list[dict[str, str]]
    schema: dict[str, Any] = field(default_factory=dict)


def _file_list(files: Sequence[str]) -> str:
    ordered = sorted(set(files))
    shown = ordered[:MAX_WORKSPACE_FILES]
    text = "\n".join(f"- {f}" for f in shown) if shown else "(the workspace is empty)"
    if len(ordered) > len(shown):
        text += f"\n… and {len(ordered) - len(shown)} more files not shown"
    return text


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [truncated: {len(text) - limit} more characters]"


# ---------------------------------------------------------------- strategies


def strategies_schema(count: int) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["strategies"],
        "properties": {
            "strategies": {
                "type": "array",
                "minItems": count,
                "maxItems": count,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "summary"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$"},
                        "summary": {"type": "string", "minLength": 1},
                    },
                },
            }
        },
    }


def strategies_prompt(goal: str, count: int, workspace_files: Sequence[str]) -> Prompt:
    """Ask for ``count`` genuinely different approaches to ``goal`` (one fork each)."""
    user = (
        f"Goal: {goal}\n\n"
        f"Workspace files:\n{_file_list(workspace_files)}\n\n"
        f"Propose exactly {count} distinct strategies to reach the goal. They must differ in approach "
        "(structure, libraries, order of work, scope), not only in wording. Give each a short "
        "kebab-case name (e.g. `minimal`, `test-first`) and a summary of two or three sentences."
    )
    return Prompt(
        purpose="strategies",
        messages=[{"role": "system", "content": SYSTEM_ROLE}, {"role": "user", "content": user}],
        schema=strategies_schema(count),
    )


# ---------------------------------------------------------------- plan


def plan_prompt(
    goal: str,
    workspace_files: Sequence[str],
    strategy: str = "default",
    strategy_summary: str = "",
    constraints: Sequence[str] = (),
) -> Prompt:
    """Ask for a plan document (``schemas/plan.schema.json``) for ``goal`` under ``strategy``."""
    hint = f"Strategy: {strategy}" + (f" — {strategy_summary}" if strategy_summary else "")
    rules = "\n".join(f"- {c}" for c in constraints) if constraints else "(none beyond the defaults)"
    user = (
        f"Goal: {goal}\n{hint}\n\n"
        f"Workspace files:\n{_file_list(workspace_files)}\n\n"
        f"Project constraints:\n{rules}\n\n"
        "Write the plan document. Rules:\n"
        f'- "goal" is the goal exactly as given; "strategy" is "{strategy}".\n'
        '- Step ids are "step_001", "step_002", … in order; "depends_on" lists earlier step ids only.\n'
        '- Each step has a one-line "title", a self-contained "instruction" an agent can follow '
        'without this conversation, the exact workspace-relative "allowed_files" it may touch, '
        'a "rationale" saying why the step exists, and "estimated_confidence" in [0, 1].\n'
        "- Do not plan changes to lock files, CI configuration or secrets unless the goal asks for it."
    )
    return Prompt(
        purpose="plan",
        messages=[{"role": "system", "content": SYSTEM_ROLE}, {"role": "user", "content": user}],
        schema=schemas.load("plan"),
    )


# ---------------------------------------------------------------- edit (llm mode)

EDIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["files", "summary"],
    "properties": {
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "content"],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "content": {"type": "string"},
                },
            },
        },
        "summary": {"type": "string"},
    },
}


def edit_schema(allowed_files: Sequence[str]) -> dict[str, Any]:
    """:data:`EDIT_SCHEMA`; paths are checked against allowed_files by the executor (globs allowed)."""
    del allowed_files  # globs cannot be expressed as an enum; the llm executor enforces them
    return EDIT_SCHEMA


def edit_prompt(
    instruction: str,
    allowed_files: Sequence[str],
    current_contents: Mapping[str, str | None],
    constraints: Sequence[str] = (),
) -> Prompt:
    """Ask for the full new content of each file to change (llm mode applies it itself)."""
    parts = []
    for path in sorted(current_contents):
        content = current_contents[path]
        if content is None:
            parts.append(f"=== {path} (does not exist yet) ===")
        else:
            parts.append(f"=== {path} ===\n{_clip(content, MAX_FILE_CHARS)}")
    files_text = "\n\n".join(parts) if parts else "(none of the allowed files exist yet)"
    rules = "\n".join(f"- {c}" for c in constraints) if constraints else "(none)"
    user = (
        f"Instruction: {instruction}\n\n"
        "You may create or change ONLY these files (globs allowed):\n"
        + "\n".join(f"- {f}" for f in allowed_files)
        + f"\n\nConstraints:\n{rules}\n\nCurrent contents:\n{files_text}\n\n"
        'Answer with {"files": [{"path": …, "content": …}], "summary": …}: the COMPLETE new '
        "content of every file you change or create (not a diff), workspace-relative paths, and "
        "a summary of what you did. Leave out files you do not change."
    )
    return Prompt(
        purpose="edit",
        messages=[
            {
                "role": "system",
                "content": "You are a careful software engineer executing one step of a Conductor plan.",
            },
            {"role": "user", "content": user},
        ],
        schema=edit_schema(allowed_files),
    )


# ---------------------------------------------------------------- repair

REPAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["instruction", "allowed_files", "rationale"],
    "properties": {
        "instruction": {"type": "string", "minLength": 1},
        "allowed_files": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "rationale": {"type": "string"},
    },
}


def repair_prompt(
    step: PlanStep,
    failure_cause: str,
    evidence: str,
    similar_fixes: Sequence[Mapping[str, Any]] = (),
    goal: str = "",
) -> Prompt:
    """Ask for a revised instruction / allowed_files after ``step`` failed.

    ``similar_fixes`` are past failures like this one and the fix that worked (from
    :meth:`conductor.history.HistoryStore.similar_failures_with_fixes`), most similar first.
    """
    if similar_fixes:
        fixes = "\n".join(
            f"- earlier failure ({fix.get('failure_cause', '?')}): {fix.get('original_instruction', '')!s}\n"
            f"  evidence: {fix.get('evidence_summary', '')!s}\n"
            f"  fix that worked: {fix.get('fix_instruction', '')!s} "
            f"(allowed_files: {json.dumps(fix.get('fix_allowed_files', []))})"
            for fix in similar_fixes
        )
    else:
        fixes = "(no similar failure on record)"
    user = (
        (f"Goal: {goal}\n" if goal else "") + f"Step {step.id}: {step.title}\n"
        f"Instruction: {step.instruction}\n"
        f"Allowed files: {json.dumps(step.allowed_files)}\n\n"
        f"The step failed. Cause: {failure_cause}\n"
        f"Evidence:\n{_clip(evidence, MAX_EVIDENCE_CHARS)}\n\n"
        f"Similar past failures and the fixes that worked:\n{fixes}\n\n"
        "Revise the step so that a retry succeeds: a self-contained instruction that addresses the "
        "cause, and the exact allowed_files it needs (only widen them if the evidence shows the step "
        "really needs another file). Explain the change in rationale."
    )
    return Prompt(
        purpose="repair",
        messages=[{"role": "system", "content": SYSTEM_ROLE}, {"role": "user", "content": user}],
        schema=REPAIR_SCHEMA,
    )
