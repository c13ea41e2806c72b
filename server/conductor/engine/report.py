"""Plain-text renderings of engine results, shared by every adapter that shows text to a person.

The CLI prints them, the MCP server returns them as tool text, the language server logs them;
all three show the same words for the same state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conductor.engine.views import StatusView, StepView

STATE_MARK = {"completed": "✓", "failed": "✗", "in_progress": "…", "pending": "·", "waiting_approval": "?",
              "skipped": "-"}


def step_line(step: StepView) -> str:
    """One step as ``status`` shows it: mark, id, title, state, confidence, and why when it failed or waits."""
    conf = f" {step.confidence.level} {step.confidence.score:.2f}" if step.confidence else ""
    waiting = ""
    if step.waiting_for == "agent":
        who = f"claimed by {step.executor}" if step.executor else "claimed" if step.claimed else "waiting for an agent"
        waiting = f" — {who}"
    elif step.waiting_for == "approval":
        waiting = " — waits for approval (`conductor approve`)"
    reason = f" — {step.reason}" if step.reason and step.state in ("failed", "skipped") else ""
    return f"{STATE_MARK.get(step.state, '?')} {step.step_id} {step.title} [{step.state}{conf}]{waiting}{reason}"


def status_text(data: StatusView) -> str:
    """``conductor status`` as the CLI prints it."""
    if not data.plans:
        return 'no plans yet; start one with `conductor build "<goal>"`'
    lines = []
    for plan in data.plans:
        extra = f" ({plan.outcome})" if plan.outcome else ""
        lines.append(f"plan {plan.plan_id} [{plan.state}{extra}] {plan.goal}")
        if plan.held_by:
            lines.append(f"  running in {plan.held_by['text']}")
        if plan.halted_reason:
            lines.append(f"  halted: {plan.halted_reason}")
        if plan.policy_changed:
            lines.append(f"  policy: {plan.policy_changed}")
        for fork in plan.forks:
            score = f" score {fork.score:.3f}" if fork.score is not None else ""
            merged = " (merged)" if plan.merged and plan.merged.get("fork_id") == fork.fork_id else ""
            lines.append(f"  fork {fork.fork_id} ({fork.strategy}) {fork.status}{score}{merged}")
            for step in fork.steps:
                lines.append(f"    {step_line(step)}")
                for copy in step.kept_copies:
                    lines.append(f"      failed attempt's working copy kept for inspection: {copy}")
                if step.requested_loosening and step.state == "waiting_approval":
                    lines.append("      the plan asks to loosen the policy (only a person may): "
                                 + "; ".join(step.requested_loosening))
    return "\n".join(lines)
