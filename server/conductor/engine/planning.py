"""Turns a goal into plan documents: strategies for the forks, then one plan per strategy.

With a model configured the engine asks it (``conductor.llm.prompts``). Without one,
planning itself is handed off: a task of ``kind: plan`` goes to the fork's handoff folder
and the executor answers with a plan document in its result (DESIGN.md, "Modes"). Either
way the plan is checked by the same validation as a plan file on disk before any step runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor.contract.plan import Plan
from conductor.handoff.coordinator import HandoffCoordinator
from conductor.handoff.tasks import TaskSpec
from conductor.llm import StructuredLLM
from conductor.llm.prompts import plan_prompt, strategies_prompt
from conductor.policy.merge import EffectivePolicy
from conductor.project.layout import CONDUCTOR_DIR, SKIP_DIRS
from conductor.validation import validate_document

SKIP = SKIP_DIRS | {CONDUCTOR_DIR}


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str


DEFAULT_STRATEGIES = [
    Strategy("direct", "the most straightforward way to the goal, in as few steps as make sense"),
    Strategy("test-first", "write or extend the tests first, then the code that makes them pass"),
    Strategy("incremental", "small, separately verifiable steps, each leaving the project working"),
    Strategy("minimal-diff", "the smallest change that satisfies the goal"),
]


class PlanningError(RuntimeError):
    """No valid plan could be obtained; the message says why."""


def workspace_files(root: Path, limit: int = 2000) -> list[str]:
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP)
        for name in sorted(filenames):
            files.append((Path(dirpath) / name).relative_to(root).as_posix())
            if len(files) >= limit:
                return files
    return files


def default_strategies(count: int) -> list[Strategy]:
    out = list(DEFAULT_STRATEGIES[:count])
    while len(out) < count:
        out.append(Strategy(f"variant-{len(out) + 1}", "an independent alternative approach"))
    return out


async def choose_strategies(llm: StructuredLLM | None, goal: str, count: int, files: list[str]) -> list[Strategy]:
    """``count`` distinct strategies: the model's when one is configured, built-in ones otherwise."""
    if count <= 1:
        return [Strategy("default", "the plan the planner thinks best")]
    if llm is None:
        return default_strategies(count)
    prompt = strategies_prompt(goal, count, files)
    reply = await asyncio.to_thread(llm.complete_json, prompt.messages, prompt.schema, prompt.purpose)
    found = [Strategy(s["name"], s.get("summary", "")) for s in reply.data["strategies"]]
    names = {s.name for s in found}
    return found + [s for s in default_strategies(count) if s.name not in names][: count - len(found)]


def check_plan(document: Any, source: str) -> Plan:
    """The plan document validated exactly like a plan file (schema + semantic rules)."""
    text = json.dumps(document, indent=2, ensure_ascii=False)
    _, diagnostics = validate_document(text, "plan", path="plan.json")
    errors = [d for d in diagnostics if d.severity == 1]
    if errors:
        detail = "; ".join(f"{d.code} at line {d.range.start_line + 1}: {d.message}" for d in errors[:5])
        raise PlanningError(f"the plan from {source} is invalid: {detail}")
    return Plan.model_validate(document)


async def plan_with_llm(llm: StructuredLLM, goal: str, strategy: Strategy, files: list[str],
                        policy: EffectivePolicy | None = None, constraints: list[str] | None = None) -> Plan:
    rules = constraints if constraints is not None else (policy.constraints if policy else [])
    prompt = plan_prompt(goal, files, strategy.name, strategy.summary, rules)
    reply = await asyncio.to_thread(llm.complete_json, prompt.messages, prompt.schema, prompt.purpose)
    return check_plan(reply.data, f"the model ({llm.model})")


def planning_instruction(goal: str, strategy: Strategy) -> str:
    return (
        f"Plan this goal; do not change any file. Goal: {goal}\n"
        f"Strategy: {strategy.name} — {strategy.summary}.\n"
        "Answer with a result whose `plan` field is a plan document (schemas/plan.schema.json): "
        '{"goal": <the goal>, "strategy": <the strategy name>, "summary": "...", "steps": [{"id": "step_001", '
        '"title": "...", "instruction": "...", "allowed_files": ["..."], "depends_on": [], "rationale": "...", '
        '"estimated_confidence": 0.8}]}. Step ids are step_001, step_002, … ; each step lists exactly the '
        "workspace-relative files it may touch."
    )


async def plan_by_handoff(coordinator: HandoffCoordinator, plan_id: str, fork_id: str, goal: str,
                          strategy: Strategy, base: str, policy: EffectivePolicy, attempt: int | None = None) -> Plan:
    """Hand planning to an executor as a ``kind: plan`` task and validate the plan it returns."""
    # Planning changes no file, so the project's verification commands have nothing to check.
    planning_policy = dataclasses.replace(policy, verification=[])
    spec = TaskSpec(plan_id=plan_id, fork_id=fork_id, task_id="step_000",
                    title=f"Planning (strategy: {strategy.name})", instruction=planning_instruction(goal, strategy),
                    allowed_files=[], kind="plan", policy=planning_policy, attempt=attempt)
    outcome = await coordinator.hand_off(spec, base=base, claim_timeout=None)
    if not outcome.ok or outcome.result is None or outcome.result.plan is None:
        raise PlanningError(f"planning task {outcome.task_path.name} failed: {outcome.reason}")
    document = dict(outcome.result.plan)
    document.setdefault("goal", goal)
    document.setdefault("strategy", strategy.name)
    return check_plan(document, f"the executor {outcome.executor}")
