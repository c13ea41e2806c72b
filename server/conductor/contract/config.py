"""Project configuration (``.conductor/config.yaml``): executor mode, model, forks.

Secrets are never part of it: ``llm.api_key_env`` names the environment variable that
holds the key, and the key itself is read only from the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"


class LLMSettings(BaseModel):
    """How Conductor reaches an OpenAI-compatible chat completions endpoint."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        default=GEMINI_BASE_URL,
        description="Base URL of an OpenAI-compatible API. Default: Gemini's OpenAI-compatible endpoint.",
        examples=[GEMINI_BASE_URL, "http://127.0.0.1:8000/v1"],
    )
    model: str = Field(
        default="gemini-2.5-flash", description="Model name sent to the endpoint.", examples=["gemini-2.5-flash"]
    )
    api_key_env: str = Field(
        default="GEMINI_API_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the API key. The key is never stored in a file.",
        examples=["GEMINI_API_KEY", "OPENAI_API_KEY"],
    )
    timeout_seconds: float = Field(
        default=120, gt=0, description="Seconds per request before it is retried.", examples=[120]
    )
    max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Retries on invalid output, timeouts, 429 and 5xx (with backoff).",
        examples=[3],
    )


class Config(BaseModel):
    """Project configuration."""

    model_config = ConfigDict(
        extra="forbid",
        title="Conductor configuration",
        json_schema_extra={"examples": [{"mode": "handoff", "forks": 3, "llm": {"model": "gemini-2.5-flash"}}]},
    )

    mode: Literal["handoff", "llm"] = Field(
        default="handoff",
        description="`handoff`: steps go to task files for an agent (no API key needed). "
        "`llm`: Conductor asks the model for edits and applies them itself.",
        examples=["handoff"],
    )
    forks: int = Field(
        default=3, ge=1, le=16, description="Strategies `explore` forks (each in its own git worktree).", examples=[3]
    )
    max_parallel_steps: int = Field(
        default=4, ge=1, le=64, description="Independent steps run at once within a fork.", examples=[4]
    )
    llm: LLMSettings = Field(default_factory=LLMSettings, description="The OpenAI-compatible endpoint.")
    planner: Literal["auto", "llm", "handoff"] = Field(
        default="auto",
        description="Who plans: `llm`, `handoff` (a planning task for an agent), or `auto` "
        "(the LLM when its key is set, handoff otherwise).",
        examples=["auto"],
    )
