"""Plain-text renderings of engine results, shared by every adapter that shows text to a person.

The CLI prints them, the MCP server returns them as tool text, the language server logs them;
all three show the same words for the same state.
"""

from __future__ import annotations

from typing import Any

STATE_MARK = {"completed": "✓", "failed": "✗", "in_progress": "…", "pending": "·", "waiting_approval": "?",
              "skipped": "-"}


def status_text(data: dict[str, Any]) -> str:
    """``conductor status`` as the CLI prints it (``data`` is ``engine.api.status()``)."""
    if not data["plans"]:
        return 'no plans yet; start one with `conductor build "<goal>"`'
    lines = []
    for plan in data["plans"]:
        extra = f" ({plan['outcome']})" if plan["outcome"] else ""
        lines.append(f"plan {plan['plan_id']} [{plan['state']}{extra}] {plan['goal']}")
        if plan.get("held_by"):
            lines.append(f"  running in {plan['held_by']['text']}")
        if plan["halted_reason"]:
            lines.append(f"  halted: {plan['halted_reason']}")
        if plan.get("policy_changed"):
            lines.append(f"  policy: {plan['policy_changed']}")
        for fork in plan["forks"]:
            score = f" score {fork['score']:.3f}" if fork["score"] is not None else ""
            merged = " (merged)" if plan["merged"] and plan["merged"].get("fork_id") == fork["fork_id"] else ""
            lines.append(f"  fork {fork['fork_id']} ({fork['strategy']}) {fork['status']}{score}{merged}")
            for step in fork["steps"]:
                conf = f" {step['confidence']['level']} {step['confidence']['score']:.2f}" if step["confidence"] else ""
                reason = f" — {step['reason']}" if step["reason"] and step["state"] == "failed" else ""
                lines.append(f"    {STATE_MARK.get(step['state'], '?')} {step['step_id']} {step['title']}"
                             f" [{step['state']}{conf}]{reason}")
                if step.get("requested_loosening") and step["state"] == "waiting_approval":
                    lines.append("      the plan asks to loosen the policy (only a person may): "
                                 + "; ".join(step["requested_loosening"]))
    return "\n".join(lines)
