"""The MCP tool list: few tools, each with one paragraph and an input schema from the contract.

Why a module of its own: the tool list is what every agent's model reads on every turn, so
it is kept small and checked against a snapshot (tests/mcp/tools_snapshot.json). Field
descriptions, the ``status`` enum and the ``task_id`` pattern are copied from the published
JSON Schemas (``conductor.contract.schemas.load``), so the tools cannot drift from the files.
"""

from __future__ import annotations

from typing import Any

from conductor.contract.schemas import load

DEFAULT_WAIT_SECONDS = 300.0
MAX_WAIT_SECONDS = 3600.0
KEEP = ("type", "enum", "pattern", "items", "description", "minimum", "maximum", "const")


def _field(kind: str, name: str, description: str | None = None, **extra: Any) -> dict[str, Any]:
    """Property ``name`` of the published ``kind`` schema, trimmed to what a tool schema needs."""
    prop = load(kind)["properties"][name]
    out = {k: v for k, v in prop.items() if k in KEEP}
    if description is not None:
        out["description"] = description
    out.update(extra)
    return out


def _filters() -> dict[str, Any]:
    return {
        "plan_id": {"type": "string", "minLength": 1,
                    "description": _field("task", "plan_id")["description"] + " Optional filter."},
        "fork_id": {"type": "string", "minLength": 1,
                    "description": _field("task", "fork_id")["description"] + " Optional filter."},
    }


def _executor() -> dict[str, Any]:
    return _field("result", "executor", "Who you are (agent name, host); the same name for next_task and "
                  "submit_result. Recorded as the claimer and in the provenance.", minLength=1)


def next_task_tool() -> dict[str, Any]:
    return {
        "name": "next_task",
        "description": (
            "Claim the next ready Conductor task (the same atomic claim as moving pending/step_NNN.task.json "
            "into in_progress/; of two agents only one gets a task). Returns the task: task_id, plan_id, "
            "fork_id, kind, instruction, allowed_files, constraints, protected_patterns, max_diff_lines, the "
            "verification commands Conductor will run, timeout_seconds and deadline, confidence, and workspace "
            "(an absolute folder). Work only inside workspace and only on allowed_files, then call "
            "submit_result before the deadline. A task of kind \"plan\" asks for a plan document instead of "
            "edits. When nothing is ready it says so (claimed: false); wait_seconds waits for one to appear."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "executor": _executor(),
                **_filters(),
                "wait_seconds": {"type": "number", "minimum": 0, "maximum": 600,
                                 "description": "Wait up to this many seconds for a task to become ready "
                                 "(default 0: answer at once)."},
            },
            "required": ["executor"],
            "additionalProperties": False,
        },
    }


def submit_result_tool() -> dict[str, Any]:
    return {
        "name": "submit_result",
        "description": (
            "Finish a task you claimed with next_task: writes step_NNN.result.json and step_NNN.explanation.md "
            "into in_progress/ (exactly the files of the file contract), then waits for Conductor to verify the "
            "evidence (files really changed vs allowed_files, protected patterns, diff size, task checksum, "
            "verification commands) and returns the verdict: pass or fail, the files actually changed, every "
            "violation and each verification command's exit code and output tail, so you can repair at once. "
            "Only the claimer may submit, once, before the deadline. For a task of kind \"plan\" put the plan "
            "document in `plan`."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "task_id": _field("result", "task_id", "The task you answer (task_id from next_task)."),
                **{k: {**v, "description": v["description"].replace(" Optional filter.",
                                                                      " As returned by next_task; needed only "
                                                                      "when task_id is ambiguous.")}
                   for k, v in _filters().items()},
                "executor": _executor(),
                "status": _field("result", "status"),
                "summary": _field("result", "summary", minLength=1),
                "explanation": {"type": "string", "minLength": 1,
                                "description": "Markdown written to step_NNN.explanation.md: what you did and why."},
                "files_changed": _field("result", "files_changed"),
                "error": _field("result", "error"),
                "plan": _field("result", "plan", "For a task of kind \"plan\" (required there): the plan "
                               "document of plan.schema.json: {goal, strategy, summary, steps: [{id: "
                               "\"step_001\", title, instruction, allowed_files, depends_on, rationale, "
                               "estimated_confidence}]}."),
                "wait_seconds": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS,
                                 "description": "How long to wait for the verdict (default: the server's, "
                                 f"{DEFAULT_WAIT_SECONDS:g}s). With 0 the call returns after writing; "
                                 "read the verdict later with explain."},
            },
            "required": ["task_id", "executor", "status", "summary", "explanation"],
            "additionalProperties": False,
        },
    }


def status_tool() -> dict[str, Any]:
    return {
        "name": "status",
        "description": (
            "The plans of this project as `conductor status` prints them: each fork and step with its state "
            "(pending, waiting_approval, in_progress, completed, failed, skipped), confidence and failure "
            "reason, plus the handoff queue's counts (tasks pending, in progress, completed, failed). "
            "Without plan_id: every plan."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {"plan_id": _filters()["plan_id"]},
            "additionalProperties": False,
        },
    }


def explain_tool() -> dict[str, Any]:
    return {
        "name": "explain",
        "description": (
            "One step as `conductor explain` prints it: why it was planned, its confidence factors, what "
            "happened, the evidence of its last verdict (violations, verification output), the failure cause "
            "and what to do next. Use it after a failed verdict or to read a verdict you did not wait for."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "step_id": _field("task", "task_id", "The step, e.g. step_002."),
                "plan_id": {**_filters()["plan_id"], "description": "Plan id (default: the latest plan)."},
                "fork_id": {**_filters()["fork_id"], "description": "Fork id (default: the merged fork, else the "
                            "first that has the step)."},
            },
            "required": ["step_id"],
            "additionalProperties": False,
        },
    }


def approve_tool() -> dict[str, Any]:
    return {
        "name": "approve",
        "description": (
            "Approve (or reject) a step that waits for a person's approval because its confidence is LOW, as "
            "`conductor approve` does; a rejected step is skipped. Offered only because this server was "
            "started with --allow-approve."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "step_id": _field("task", "task_id", "The waiting step, e.g. step_002."),
                "plan_id": {**_filters()["plan_id"], "description": "Plan id (default: the latest plan)."},
                "fork_id": {**_filters()["fork_id"], "description": "Only this fork (default: every fork where "
                            "the step waits)."},
                "decision": {"type": "string", "enum": ["approve", "reject"],
                             "description": "approve (default) or reject."},
                "by": {"type": "string", "minLength": 1, "description": "Who decides (recorded in the journal)."},
            },
            "required": ["step_id"],
            "additionalProperties": False,
        },
    }


def tool_definitions(allow_approve: bool = False) -> list[dict[str, Any]]:
    """The tools a server offers, as MCP ``Tool`` dictionaries (``name``, ``description``, ``inputSchema``)."""
    tools = [next_task_tool(), submit_result_tool(), status_tool(), explain_tool()]
    if allow_approve:
        tools.append(approve_tool())
    return tools
