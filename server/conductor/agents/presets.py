"""Agent presets: the data that turns a task into one coding-agent CLI's non-interactive run.

Why it exists: aider, Claude Code, Codex CLI, Gemini CLI and OpenCode each have their own flags
for headless runs, permissions, the model and its endpoint, and their own habits. None of that
is code here: the built-in presets are data (``presets.yaml`` beside this module), a project
extends or changes them under ``agents:`` in ``config.yaml``, and :func:`render` fills a
preset's placeholders for one task. What a preset may reach is decided here too: the key of
config.yaml's model (only in the environment, never on the command line) and the variables the
preset names in ``pass_env``, nothing else.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from conductor.contract.config import AgentPreset, Config
from conductor.project.layout import ProjectLayout

PRESETS_RESOURCE = "presets.yaml"
#: The placeholders a preset may use; anything else in braces (JSON, TOML) is left alone.
PLACEHOLDER = re.compile(r"\{(prompt|prompt_file|files|workspace|home|model|base_url|api_key|task_file|task_id)\}")
VERSION_TIMEOUT_SECONDS = 60
PROMPT_SHOWN = "{prompt}"  # how the prompt appears in a recorded command line (it is in the explanation)
ENV_BASE_URL = "CONDUCTOR_LLM_BASE_URL"
ENV_MODEL = "CONDUCTOR_LLM_MODEL"
ENV_API_KEY_FALLBACK = "CONDUCTOR_API_KEY"


class PresetError(ValueError):
    """An unknown preset, or one whose definition cannot work; the message says what and where."""


def builtin_presets() -> dict[str, AgentPreset]:
    """The presets shipped in the package, validated."""
    text = resources.files("conductor.agents").joinpath(PRESETS_RESOURCE).read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    out: dict[str, AgentPreset] = {}
    for name, entry in data.items():
        try:
            out[name] = AgentPreset.model_validate(entry)
        except ValidationError as exc:  # pragma: no cover - the shipped file is tested
            raise PresetError(f"conductor/agents/{PRESETS_RESOURCE}: preset `{name}`: {exc}") from exc
    return out


def load_config(root: Path) -> Config:
    """The project's ``config.yaml`` (defaults when there is none); a clear error when it is invalid."""

    path = ProjectLayout.at(root).config_file
    if not path.is_file():
        return Config()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return Config.model_validate(document)
    except (yaml.YAMLError, ValidationError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()
        raise PresetError(f"{path}: invalid configuration ({' '.join(first[:3])}); "
                          "run `conductor validate` to see every problem") from None


def all_presets(config: Config | None = None) -> dict[str, AgentPreset]:
    """Built-in presets with the project's ``agents:`` entries applied (new ones added, fields replaced)."""
    presets = builtin_presets()
    for name, entry in (config.agents if config else {}).items():
        if name in presets:
            presets[name] = presets[name].model_copy(update=entry.model_dump(exclude_unset=True))
        elif entry.command is None:
            raise PresetError(f"config.yaml: agents.{name} is not a built-in preset, so it needs a `command` "
                              f"(built-in: {', '.join(sorted(builtin_presets()))})")
        else:
            presets[name] = entry
    return presets


def get_preset(name: str, config: Config | None = None) -> AgentPreset:
    presets = all_presets(config)
    if name not in presets:
        raise PresetError(f"no agent preset `{name}`; choose one of {', '.join(sorted(presets))} "
                          "(or add it under `agents:` in .conductor/config.yaml)")
    return presets[name]


def command_words(preset: AgentPreset) -> list[str]:
    """The preset's command as a list of arguments (a string is split like a shell would)."""
    if preset.command is None:
        raise PresetError("the preset has no `command`")
    words = shlex.split(preset.command) if isinstance(preset.command, str) else list(preset.command)
    if not words:
        raise PresetError("the preset's `command` is empty")
    return words


def executable(preset: AgentPreset) -> str:
    return command_words(preset)[0]


def installed(preset: AgentPreset, path: str | None = None) -> str | None:
    """The tool's executable on ``PATH`` (or ``path``), or ``None``."""
    return shutil.which(executable(preset), path=path)


@dataclass(frozen=True)
class ModelTarget:
    """config.yaml's model, as a tool can be pointed at it."""

    base_url: str
    model: str
    api_key: str
    key_source: str


def model_target(config: Config, env: dict[str, str] | os._Environ[str] | None = None) -> ModelTarget | None:
    """config.yaml's model when its key is set in the environment (same rules as the LLM client), else None."""
    environ = os.environ if env is None else env
    for name in (config.llm.api_key_env, ENV_API_KEY_FALLBACK):
        value = environ.get(name, "").strip()
        if value:
            return ModelTarget(base_url=environ.get(ENV_BASE_URL) or config.llm.base_url,
                               model=environ.get(ENV_MODEL) or config.llm.model, api_key=value, key_source=name)
    return None


@dataclass
class Context:
    """The values a preset's placeholders take for one run."""

    prompt: str = ""
    prompt_file: str = ""
    files: list[str] = field(default_factory=list)
    workspace: str = ""
    home: str = ""
    task_file: str = ""
    task_id: str = ""
    target: ModelTarget | None = None

    def value(self, name: str, *, allow_key: bool) -> str:
        if name == "api_key":
            if not allow_key:
                raise PresetError("{api_key} may only appear in `llm.env` (a key never goes on a command line "
                                  "or into a file)")
            return self.target.api_key if self.target else ""
        if name in ("model", "base_url"):
            return getattr(self.target, name) if self.target else ""
        if name == "files":
            return " ".join(self.files)
        return str(getattr(self, name))


def fill(text: str, ctx: Context, *, allow_key: bool = False) -> str:
    return PLACEHOLDER.sub(lambda m: ctx.value(m.group(1), allow_key=allow_key), text)


@dataclass
class Invocation:
    """One run of a tool: what to execute, with what environment, files and input."""

    argv: list[str]
    env: dict[str, str]
    files: dict[str, str]
    stdin: str | None
    shown: str
    uses_model: bool
    pass_env: list[str]


def _args(words: list[str], ctx: Context) -> tuple[list[str], list[str]]:
    """``words`` filled in, and the same with the prompt shown as ``{prompt}`` (for the record)."""
    argv: list[str] = []
    shown: list[str] = []
    for word in words:
        if word == "{files}":
            files = [f"./{name}" if name.startswith("-") else name for name in ctx.files]  # never a flag
            argv += files
            shown += files
            continue
        argv.append(fill(word, ctx))
        shown.append(fill(word.replace("{prompt}", "\0"), ctx).replace("\0", PROMPT_SHOWN))
    return argv, shown


def uses_model(preset: AgentPreset, target: ModelTarget | None) -> bool:
    if preset.llm is None or target is None:
        return False
    return preset.llm.base_url_contains is None or preset.llm.base_url_contains in target.base_url


def render(preset: AgentPreset, ctx: Context, *, plan: bool = False) -> Invocation:
    """The invocation of ``preset`` for one task (a planning task when ``plan``)."""
    with_model = uses_model(preset, ctx.target)
    words = command_words(preset) + (preset.plan_args if plan else preset.step_args)
    if with_model and preset.llm is not None:
        words += preset.llm.args
    argv, shown = _args(words, ctx)
    env = {name: fill(value, ctx) for name, value in preset.env.items()}
    files = {name: fill(content, ctx) for name, content in preset.files.items()}
    if with_model and preset.llm is not None:
        env.update({name: fill(value, ctx, allow_key=True) for name, value in preset.llm.env.items()})
        files.update({name: fill(content, ctx) for name, content in preset.llm.files.items()})
    for name in files:
        if "/" in name or name in ("", ".", ".."):
            raise PresetError(f"preset file name `{name}` must be a plain file name (it goes into {{home}})")
    return Invocation(argv=argv, env=env, files=files, stdin=ctx.prompt if preset.prompt_stdin else None,
                      shown=shlex.join(shown), uses_model=with_model, pass_env=list(preset.pass_env))


def describe(preset: AgentPreset, target: ModelTarget | None = None) -> str:
    """The command line a preset runs for a step, placeholders shown (``--preset list``)."""
    words = command_words(preset) + preset.step_args
    if uses_model(preset, target) and preset.llm is not None:
        words += preset.llm.args
    text = " ".join(w if PLACEHOLDER.search(w) and " " not in w else shlex.quote(w) for w in words)
    return text + (" < {prompt}" if preset.prompt_stdin else "")


def tool_version(preset: AgentPreset, env: dict[str, str]) -> str | None:
    """The first line the tool's version command prints, or ``None`` when it does not answer."""
    argv = list(preset.version) if preset.version else [executable(preset), "--version"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT_SECONDS,
                              stdin=subprocess.DEVNULL, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        if line.strip():
            return line.strip()[:200]
    return None


def expand_home(entry: str) -> Path:
    return Path(os.path.expanduser(entry))


def as_json(name: str, preset: AgentPreset, target: ModelTarget | None) -> dict[str, Any]:
    found = installed(preset)
    return {"name": name, "description": preset.description, "command": describe(preset, target),
            "installed": found is not None, "path": found, "install": preset.install,
            "uses_project_model": uses_model(preset, target), "trusted": preset.trusted, "tested": preset.tested,
            "pass_env": list(preset.pass_env)}
