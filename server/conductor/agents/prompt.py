"""The prompt a coding-agent CLI gets for a task: everything the task enforces, in plain words.

Why it exists: a tool run by a preset knows nothing of Conductor's contract and needs none of
it, but it must know what will be checked: the instruction, the files it may touch, the
step's constraints, the protected patterns and every limit (lines, files, time), and the
verification commands that will run afterwards. A planning task asks instead for the plan
document, as one JSON object, which is parsed like any model reply (fenced or in prose).
"""

from __future__ import annotations

import json
from typing import Any

from conductor.contract.task import Task

PLAN_ANSWER = (
    "Do not create, change or delete any file. Answer with the plan document as ONE JSON object inside a "
    "```json fenced block, and nothing after it. It must validate against this JSON Schema:"
)


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items) if items else "- (none)"


def step_prompt(task: Task) -> str:
    """The prompt for a step: the instruction and everything Conductor will check afterwards."""
    limits = [f"at most {task.max_diff_lines} changed lines in total (added + removed)"]
    max_files = getattr(task, "max_files_changed", None)
    if max_files is not None:
        limits.append(f"at most {max_files} files created, changed or deleted")
    limits.append(f"finish within {task.timeout_seconds} seconds")
    sections = [
        f"You are doing one step of a plan. Conductor will check the files you leave behind.\n\n"
        f"## Step {task.task_id}" + (f": {task.title}" if task.title else "") + f"\n\n{task.instruction}",
        "## Files you may create, change or delete (paths relative to the current directory)\n\n"
        + _bullets(task.allowed_files)
        + "\n\nTouch no other file: if anything else changes, the whole step is refused.",
    ]
    if task.constraints:
        sections.append("## Rules\n\n" + _bullets(task.constraints))
    if task.protected_patterns:
        sections.append("## Protected: never create, change or delete files matching\n\n"
                        + _bullets(task.protected_patterns))
    sections.append("## Limits\n\n" + _bullets(limits))
    verification = getattr(task, "verification", None) or []
    if verification:
        commands = [f"`{v.run}` ({v.name}; must pass within {v.timeout_seconds} s)" for v in verification]
        sections.append("## Checks that will run after you finish (in this folder)\n\n" + _bullets(commands))
    sections.append(
        "## How to finish\n\nWork without asking questions: nobody will answer. The current directory is a git "
        "working copy made for this step alone; you may commit in it, only the resulting files count. "
        "When the step is done, stop."
    )
    return "\n\n".join(sections) + "\n"


def plan_prompt(task: Task, plan_schema: dict[str, Any]) -> str:
    """The prompt for a planning task: the task's own instruction, then how to answer."""
    rules = ("\n\n## Rules every step must follow\n\n" + _bullets(task.constraints)) if task.constraints else ""
    return (
        f"{task.instruction}{rules}\n\n## How to answer\n\n{PLAN_ANSWER}\n\n"
        + json.dumps(plan_schema, separators=(",", ":"), ensure_ascii=False)
        + "\n"
    )
