"""The plan document: a goal broken into steps (one per fork: ``.conductor/plans/<plan_id>/<fork_id>.plan.json``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from conductor.contract.policy import Policy


class PlanStep(BaseModel):
    """One step of a plan."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^step_[0-9]{3,}$", description="Step id, unique in the plan.", examples=["step_001"])
    title: str = Field(min_length=1, description="One-line summary.", examples=["Add hello.py"])
    instruction: str = Field(
        min_length=1, description="What the executor must do.", examples=["Create hello.py that prints Hello."]
    )
    allowed_files: list[str] = Field(
        min_length=1,
        description="Workspace-relative paths or globs the step may touch.",
        examples=[["hello.py"]],
    )
    depends_on: list[str] = Field(
        default_factory=list, description="Ids of steps that must complete first.", examples=[["step_001"]]
    )
    rationale: str = Field(
        default="", description="Why the planner included this step.", examples=["The CLI needs an entry point."]
    )
    estimated_confidence: float | None = Field(
        default=None, ge=0, le=1, description="The planner's own estimate of success in [0, 1].", examples=[0.85]
    )
    policy: Policy | None = Field(
        default=None, description="Step-level policy, merged over the plan's.", examples=[None]
    )


class Plan(BaseModel):
    """A goal planned into steps under one strategy."""

    model_config = ConfigDict(
        extra="forbid",
        title="Conductor plan",
        json_schema_extra={
            "examples": [
                {
                    "contract_version": "1.0",
                    "goal": "Create a hello world script",
                    "strategy": "minimal",
                    "steps": [
                        {
                            "id": "step_001",
                            "title": "Add hello.py",
                            "instruction": "Create hello.py that prints Hello.",
                            "allowed_files": ["hello.py"],
                        }
                    ],
                }
            ]
        },
    )

    contract_version: str = Field(default="1.0", description="Version of the plan contract.", examples=["1.0"])
    goal: str = Field(
        min_length=1, description="The user's goal, as stated.", examples=["Create a Python CLI task manager"]
    )
    strategy: str = Field(
        default="default", description="Name of the strategy this plan follows.", examples=["minimal"]
    )
    summary: str = Field(
        default="", description="The approach in a few sentences.", examples=["One module, one test file."]
    )
    steps: list[PlanStep] = Field(min_length=1, description="The steps, in a valid dependency order.")
    policy: Policy | None = Field(
        default=None, description="Plan-level policy, merged over the project's.", examples=[None]
    )
