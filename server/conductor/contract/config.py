"""Project configuration (``.conductor/config.yaml``): executor mode, model, forks, agents.

Secrets are never part of it: ``llm.api_key_env`` names the environment variable that
holds the key, and the key itself is read only from the environment. An agent preset
names the variables its tool may see (``pass_env``); their values stay in the environment.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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
    max_output_tokens: int | None = Field(
        default=16384,
        ge=256,
        le=1_000_000,
        description="Output budget per request (`max_tokens`). A reply cut off at it is retried once with "
        "four times the budget. `null` sends no limit (the endpoint's default).",
        examples=[16384],
    )


AgentName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class AgentLLM(BaseModel):
    """What a preset adds when the project's model is configured (its key is in the environment)."""

    model_config = ConfigDict(extra="forbid")

    args: list[str] = Field(
        default_factory=list,
        description="Arguments appended to the command (placeholders `{model}`, `{base_url}`, `{home}`).",
        examples=[["--model", "openai/{model}", "--openai-api-base", "{base_url}"]],
    )
    env: dict[EnvName, str] = Field(
        default_factory=dict,
        description="Environment for the tool; `{api_key}` is the configured key (masked in every record).",
        examples=[{"OPENAI_API_KEY": "{api_key}"}],
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Files written into the run's scratch folder `{home}` (name → templated content); "
        "they replace `files` of the same name.",
        examples=[{"config.toml": 'model = "{model}"'}],
    )
    base_url_contains: str | None = Field(
        default=None,
        description="Use this section only when `llm.base_url` contains this text (a tool that speaks only "
        "its vendor's API); otherwise the tool uses its own login.",
        examples=["generativelanguage.googleapis.com"],
    )


class AgentPreset(BaseModel):
    """How `conductor agent --preset NAME` runs one coding-agent CLI on a task.

    The built-in presets live in the package (``conductor/agents/presets.yaml``); an entry
    under ``agents:`` in ``config.yaml`` adds a preset, or changes fields of a built-in one.
    Placeholders in `command`, `env` and files: `{prompt}` (the task as a prompt),
    `{prompt_file}`, `{files}` (the task's allowed files that exist or are plain paths, one
    argument each), `{workspace}`, `{home}` (a scratch folder outside the working copy),
    `{model}`, `{base_url}`, `{task_file}`, `{task_id}`.
    """

    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", description="What the tool is.", examples=["aider, AI pair programming"])
    command: list[str] | str | None = Field(
        default=None,
        description="The command line: a list of arguments, or one string split like a shell would "
        "(no shell runs it).",
        examples=[["aider", "--yes-always", "--message-file", "{prompt_file}", "{files}"]],
    )
    version: list[str] | None = Field(
        default=None,
        description="Command that prints the tool's version (default: the executable with `--version`).",
        examples=[["aider", "--version"]],
    )
    env: dict[EnvName, str] = Field(
        default_factory=dict, description="Environment set for the tool (templated).", examples=[{"HOME": "{home}"}]
    )
    pass_env: list[EnvName] = Field(
        default_factory=list,
        description="Names of environment variables holding secrets the tool may see (its own key). "
        "Every other `*_API_KEY`, `*_TOKEN`, `*_SECRET` … is removed from its environment.",
        examples=[["ANTHROPIC_API_KEY"]],
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Files written into the scratch folder `{home}` before the run (name → templated content).",
        examples=[{"settings.json": "{}"}],
    )
    llm: AgentLLM | None = Field(
        default=None,
        description="Arguments, environment and files that point the tool at config.yaml's model.",
        examples=[{"args": ["--model", "openai/{model}"], "env": {"OPENAI_API_KEY": "{api_key}"}}],
    )
    step_args: list[str] = Field(
        default_factory=list,
        description="Arguments added for a step (a task that edits files).",
        examples=[["--permission-mode", "acceptEdits"]],
    )
    plan_args: list[str] = Field(
        default_factory=list,
        description="Arguments added for a planning task (the answer is a plan document, not file edits).",
        examples=[["--chat-mode", "ask"]],
    )
    prompt_stdin: bool = Field(default=False, description="Send the prompt on standard input.", examples=[False])
    tool_files: list[str] = Field(
        default_factory=list,
        description="Globs (workspace-relative) of files the tool writes for itself; removed from the working "
        "copy after the run when the task did not allow them.",
        examples=[[".aider*"]],
    )
    writable: list[str] = Field(
        default_factory=list,
        description="Extra paths the tool may write inside the sandbox (its own settings folder; `~` is the "
        "user's home). Only existing paths are made writable.",
        examples=[["~/.claude"]],
    )
    trusted: str = Field(
        default="",
        description="What the tool is trusted to do, in a sentence (README table, `--preset list`).",
        examples=["edits files and commits in the attempt's working copy"],
    )
    tested: str = Field(
        default="",
        description="How this preset is tested (README table, `--preset list`).",
        examples=["end to end in CI"],
    )
    install: str = Field(default="", description="How to install the tool.", examples=["pipx install aider-chat"])


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
    agents: dict[AgentName, AgentPreset] = Field(
        default_factory=dict,
        description="Coding-agent presets for `conductor agent --preset NAME`: new ones, or fields that change "
        "a built-in one (aider, claude-code, codex, gemini-cli, opencode).",
        examples=[{"my-agent": {"command": "my-agent --task {prompt_file}", "pass_env": ["MY_AGENT_API_KEY"]}}],
    )
    planner: Literal["auto", "llm", "handoff"] = Field(
        default="auto",
        description="Who plans: `llm`, `handoff` (a planning task for an agent), or `auto` "
        "(the LLM when its key is set, handoff otherwise).",
        examples=["auto"],
    )
