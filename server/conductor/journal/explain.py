"""``conductor explain <step>``: why a step exists, how confident Conductor was, what happened.

Why it exists: a user (in the terminal, or on hover in the editor) must be able to see in
one place why the planner included a step, which factors set its confidence, the events
that followed, the evidence the verdict rests on, and — when it failed — the cause and what
to do next. Everything is read from the projected :class:`PlanState`, so the explanation
is exactly what the journal supports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from conductor.journal.projection import PlanState, StepState

#: What to do about a failure, by cause code (codes come from verification and handoff).
FAILURE_ADVICE: dict[str, str] = {
    "out_of_scope": "The executor changed files outside allowed_files. Widen allowed_files in the plan "
    "if those files are really needed, or re-run the step so it stays inside them.",
    "protected_file": "A protected file was touched. Protections come from policy.yaml; release one "
    "explicitly with file_rules.unprotect only if that is intended.",
    "diff_too_large": "The change exceeded max_diff_lines. Split the step into smaller steps or raise the "
    "limit in the policy.",
    "too_many_files": "The change touched more files than max_files_changed allows. Split the step.",
    "verification_failed": "A verification command failed. Read its output in the evidence, fix the cause "
    "(or let Conductor plan a repair), then `conductor resume`.",
    "timeout": "No result arrived before timeout_seconds. Check that an agent is running "
    "(`conductor agent`) or raise behavior.timeout_seconds.",
    "checksum_mismatch": "The task file was edited after Conductor wrote it. Tasks are immutable; "
    "`conductor resume` re-issues it.",
    "invalid_result": "The result file did not match result.schema.json. Fix the agent's output format.",
    "executor_failed": "The executor reported failure. Read its explanation and error, then resume.",
    "llm_error": "The model could not produce a valid answer. Check the API key, endpoint and model, or "
    "switch to handoff mode.",
}

NEXT_ACTION: dict[str, str] = {
    "pending": "Waiting to be handed off; `conductor resume` issues it when its dependencies are done.",
    "waiting_approval": "Confidence is below the approval threshold: approve it (`conductor approve`) or skip it.",
    "in_progress": "With an executor; Conductor verifies it when the result file appears.",
    "completed": "Nothing: the step is complete and verified.",
    "failed": "See the failure cause below, then `conductor resume` (a repair is planned when allowed).",
    "skipped": "Nothing: the step was skipped by a human decision.",
}


@dataclass(frozen=True)
class StepExplanation:
    """The explanation as data (for ``--json`` and hovers) and as Markdown (for people)."""

    data: dict[str, Any]
    markdown: str


def explain_step(state: PlanState, step_id: str, fork_id: str | None = None) -> StepExplanation:
    """Explain ``step_id`` (in ``fork_id``, else the merged or first fork that has it).

    Raises ``KeyError`` with a clear message when the journal knows no such step.
    """
    step = state.find_step(step_id, fork_id)
    if step is None:
        where = f" in fork {fork_id!r}" if fork_id else ""
        known = sorted({sid for f in state.forks.values() for sid in f.steps})
        raise KeyError(
            f"no step {step_id!r}{where} in plan {state.plan_id!r}; known steps: {', '.join(known) or 'none'}"
        )
    fork = state.forks[step.fork_id]
    advice = FAILURE_ADVICE.get(step.failure_cause or "", "") if step.state == "failed" else ""
    if step.state == "failed" and not advice:
        advice = "Read the evidence and the failure reason, fix the cause, then `conductor resume`."
    data: dict[str, Any] = {
        "plan_id": state.plan_id,
        "goal": state.goal,
        "fork_id": step.fork_id,
        "strategy": fork.strategy,
        "step_id": step.step_id,
        "title": step.title,
        "state": step.state,
        "why_planned": {
            "rationale": step.rationale,
            "instruction": step.instruction,
            "allowed_files": step.allowed_files,
            "depends_on": step.depends_on,
            "planner_estimate": step.estimated_confidence,
        },
        "confidence": step.confidence,
        "attempts": step.attempts,
        "executor": step.executor,
        "agent_run": step.agent_run,
        "approval": {"approved_by": step.approved_by, "rejected_by": step.rejected_by},
        "what_happened": step.timeline,
        "verdict": {
            "verdict": step.verdict,
            "reason": step.verdict_reason,
            "evidence": step.evidence,
            "provenance_path": step.provenance_path,
        },
        "failure": {"cause": step.failure_cause, "reason": step.failure_reason, "what_to_do": advice}
        if step.state == "failed"
        else None,
        "repairs": step.repairs,
        "next_action": NEXT_ACTION.get(step.state, ""),
    }
    return StepExplanation(data=data, markdown=_markdown(state, step, fork.strategy, data))


def _markdown(state: PlanState, step: StepState, strategy: str, data: dict[str, Any]) -> str:
    lines = [f"# {step.step_id}: {step.title or '(untitled)'}", ""]
    lines.append(
        f"**State:** {step.state} · fork `{step.fork_id}`"
        + (f" ({strategy})" if strategy else "")
        + f" · attempts {step.attempts}"
    )
    lines += ["", "## Why it was planned", "", step.rationale or "_The planner gave no rationale._", ""]
    lines.append(f"Instruction: {step.instruction}")
    lines.append("Allowed files: " + (", ".join(f"`{f}`" for f in step.allowed_files) or "none"))
    if step.depends_on:
        lines.append("Depends on: " + ", ".join(step.depends_on))
    lines += ["", "## Confidence", ""]
    confidence = step.confidence
    if confidence:
        lines.append(f"**{float(confidence.get('score', 0)):.2f}** ({confidence.get('level', '?')})")
        factors = confidence.get("factors") or []
        if factors:
            lines += ["", "| factor | value | weight | why |", "|---|---|---|---|"]
            for factor in factors:
                lines.append(
                    f"| {factor.get('name')} | {float(factor.get('value', 0)):.2f} | "
                    f"{float(factor.get('weight', 0)):.2f} | {factor.get('detail', '')} |"
                )
    else:
        lines.append("_Not scored yet._")
    lines += ["", "## What happened", ""]
    run = step.agent_run
    if run:
        code = "killed at the timeout" if run.get("exit_code") is None else f"exit code {run.get('exit_code')}"
        duration = run.get("duration_seconds")
        lines.append(f"Agent: **{run.get('agent')}**" + (f" ({run.get('version')})" if run.get("version") else "")
                     + f" — {code}" + (f" after {float(duration):.1f} s" if duration is not None else ""))
        lines += [f"Command: `{run.get('command', '')}`", ""]
    if step.timeline:
        for entry in step.timeline:
            extras = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in {"seq", "ts", "type"} and v is not None)
            lines.append(f"- #{entry['seq']} {entry['ts']} `{entry['type']}`" + (f" — {extras}" if extras else ""))
    else:
        lines.append("_Nothing yet._")
    if step.verdict is not None or step.evidence is not None:
        lines += ["", "## Evidence", "", f"Verdict: **{step.verdict}** — {step.verdict_reason or ''}"]
        if step.provenance_path:
            lines.append(f"Provenance: `{step.provenance_path}`")
        if step.kept_copies and state.outcome != "completed":
            lines.append("Working copies of refused attempts (kept for inspection; removed when the plan completes): "
                         + ", ".join(f"`{copy}`" for copy in step.kept_copies))
        if step.evidence is not None:
            lines += [
                "",
                "```json",
                json.dumps(step.evidence, indent=2, ensure_ascii=False, default=str),
                "```",
            ]
    failure = data.get("failure")
    if failure:
        lines += [
            "",
            "## Why it failed",
            "",
            f"Cause: `{failure['cause']}` — {failure['reason'] or ''}",
            "",
            f"**What to do:** {failure['what_to_do']}",
        ]
    if step.repairs:
        lines += ["", "## Repairs", ""]
        for repair in step.repairs:
            lines.append(f"- attempt {repair.get('attempt')}: {repair.get('instruction')}")
    lines += ["", "## Next", "", data["next_action"], ""]
    return "\n".join(lines)
