"""The planning prompts: what they say, the schemas they demand, and that real answers fit them."""

from __future__ import annotations

import jsonschema
import pytest

from conductor.contract import schemas
from conductor.contract.config import LLMSettings
from conductor.contract.plan import Plan, PlanStep
from conductor.llm import LLMClient, request_digest
from conductor.llm.prompts import (
    MAX_WORKSPACE_FILES,
    edit_prompt,
    plan_prompt,
    repair_prompt,
    strategies_prompt,
)
from tests.support.openai_server import ScriptedOpenAIServer

PLAN = {
    "contract_version": "1.0",
    "goal": "Create a hello world script",
    "strategy": "minimal",
    "summary": "One file.",
    "steps": [
        {
            "id": "step_001",
            "title": "Add hello.py",
            "instruction": "Create hello.py that prints Hello.",
            "allowed_files": ["hello.py"],
            "rationale": "The goal is the script itself.",
            "estimated_confidence": 0.9,
        }
    ],
}


def test_the_plan_prompt_carries_goal_strategy_and_files_and_demands_the_published_plan_schema() -> None:
    prompt = plan_prompt("Create a hello world script", ["README.md", "src/app.py"], "minimal", "Keep it tiny.")
    text = prompt.messages[-1]["content"]
    assert prompt.purpose == "plan"
    assert "Create a hello world script" in text and "minimal — Keep it tiny." in text
    assert "- README.md" in text and "- src/app.py" in text
    assert prompt.schema == schemas.load("plan")
    jsonschema.validate(PLAN, prompt.schema)


def test_a_huge_workspace_is_truncated_visibly_and_deterministically() -> None:
    files = [f"src/module_{i:05d}.py" for i in range(MAX_WORKSPACE_FILES + 50)]
    first = plan_prompt("goal", files)
    second = plan_prompt("goal", list(reversed(files)))
    assert "… and 50 more files not shown" in first.messages[-1]["content"]
    assert request_digest(first.messages, "m") == request_digest(second.messages, "m")


def test_the_strategies_schema_demands_exactly_k_named_strategies() -> None:
    prompt = strategies_prompt("Build a CLI", 3, [])
    good = {"strategies": [{"name": n, "summary": "s"} for n in ("minimal", "test-first", "layered")]}
    jsonschema.validate(good, prompt.schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"strategies": good["strategies"][:2]}, prompt.schema)
    assert "exactly 3 distinct strategies" in prompt.messages[-1]["content"]


def test_the_edit_prompt_shows_current_contents_and_missing_files() -> None:
    prompt = edit_prompt("Add a greeting", ["hello.py", "tests/*.py"], {"hello.py": "print('hi')\n", "new.py": None})
    text = prompt.messages[-1]["content"]
    assert "=== hello.py ===\nprint('hi')" in text and "=== new.py (does not exist yet) ===" in text
    assert "- tests/*.py" in text
    jsonschema.validate({"files": [{"path": "hello.py", "content": "x"}], "summary": "done"}, prompt.schema)


def test_the_repair_prompt_includes_the_evidence_and_past_fixes() -> None:
    step = PlanStep(id="step_002", title="Add tests", instruction="Write tests", allowed_files=["tests/test_x.py"])
    fix = {
        "failure_cause": "verification_failed",
        "original_instruction": "Write tests for x",
        "evidence_summary": "ImportError: no module x",
        "fix_instruction": "Create x/__init__.py first, then the tests",
        "fix_allowed_files": ["x/__init__.py", "tests/test_x.py"],
    }
    prompt = repair_prompt(step, "verification_failed", "E   ImportError: no module x", [fix], goal="Test x")
    text = prompt.messages[-1]["content"]
    assert "Cause: verification_failed" in text and "ImportError" in text
    assert "Create x/__init__.py first" in text
    jsonschema.validate({"instruction": "i", "allowed_files": ["a"], "rationale": "r"}, prompt.schema)


def test_a_plan_answer_through_the_real_client_is_a_valid_plan_document(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(PLAN, purpose="plan")
    client = LLMClient(
        LLMSettings(base_url=openai_server.base_url, model="scripted-model"), env={"GEMINI_API_KEY": "k-123456789"}
    )
    prompt = plan_prompt("Create a hello world script", ["README.md"], "minimal")
    reply = client.complete_json(prompt.messages, prompt.schema, prompt.purpose)
    plan = Plan.model_validate(reply.data)
    assert plan.steps[0].allowed_files == ["hello.py"]
