"""The presets as data: every built-in tool's command line for a task, with and without config.yaml's model.

These are the tools' real non-interactive invocations; aider and Codex CLI are also run end to
end (test_aider_e2e.py, test_codex_e2e.py). Keys never appear on a command line or in a file.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from conductor.agents.presets import (
    Context,
    ModelTarget,
    PresetError,
    all_presets,
    builtin_presets,
    describe,
    get_preset,
    model_target,
    render,
)
from conductor.agents.prompt import plan_prompt, step_prompt
from conductor.contract.config import AgentPreset, Config, LLMSettings
from conductor.contract.schemas import load
from conductor.contract.task import Task

KEY = "sk-project-model-key-0123456789"
TARGET = ModelTarget(base_url="http://127.0.0.1:8765/v1", model="coder-1", api_key=KEY, key_source="GEMINI_API_KEY")
GEMINI = ModelTarget(base_url="https://generativelanguage.googleapis.com/v1beta/openai/", model="gemini-2.5-flash",
                     api_key=KEY, key_source="GEMINI_API_KEY")


def task(**changes: object) -> Task:
    body = {"contract_version": "1.0", "task_id": "step_002", "plan_id": "p1", "fork_id": "main",
            "title": "Add the greeting", "workspace": "/work/attempt", "instruction": "Create hello.py with greet().",
            "allowed_files": ["hello.py", "tests/*.py"], "constraints": ["Keep changes small"],
            "protected_patterns": ["*.lock"], "max_diff_lines": 120, "timeout_seconds": 300,
            "confidence": {"score": 0.9, "level": "high"}, "created_at": "2026-01-01T00:00:00Z",
            "checksum": "sha256:" + "0" * 64}
    body.update(changes)
    return Task.model_validate(body)


def ctx(target: ModelTarget | None = TARGET, files: list[str] | None = None) -> Context:
    return Context(prompt="PROMPT TEXT", prompt_file="/scratch/prompt.md", files=files or ["hello.py"],
                   workspace="/work/attempt", home="/scratch", task_file="/p/step_002.task.json", task_id="step_002",
                   target=target)


def test_the_shipped_presets_are_the_five_tools_each_with_trust_and_test_notes() -> None:
    presets = builtin_presets()
    assert sorted(presets) == ["aider", "claude-code", "codex", "gemini-cli", "opencode"]
    for name, preset in presets.items():
        assert preset.command and preset.trusted and preset.tested and preset.install, name


def test_aider_with_the_project_model_runs_offline_and_keeps_its_files_out_of_the_working_copy() -> None:
    run = render(get_preset("aider"), ctx(files=["hello.py", "tests/test_hello.py"]))
    argv = run.argv
    assert argv[0] == "aider"
    for flag in ("--yes-always", "--no-check-update", "--no-analytics", "--no-gitignore", "--no-show-model-warnings"):
        assert flag in argv
    assert argv[argv.index("--message-file") + 1] == "/scratch/prompt.md"
    assert argv[argv.index("--chat-history-file") + 1].startswith("/scratch/")
    assert argv[argv.index("--input-history-file") + 1].startswith("/scratch/")
    assert argv[argv.index("--model") + 1] == "openai/coder-1"
    assert argv[argv.index("--openai-api-base") + 1] == "http://127.0.0.1:8765/v1"
    files_at = argv.index("/scratch/prompt.md") + 1
    assert argv[files_at:files_at + 2] == ["hello.py", "tests/test_hello.py"]  # the files to open, one each
    assert run.env == {"HOME": "/scratch", "OPENAI_API_KEY": KEY}
    metadata = json.loads(run.files["model-metadata.json"])
    assert metadata["openai/coder-1"]["input_cost_per_token"] == 0
    assert KEY not in " ".join(argv) and KEY not in run.shown
    assert all(KEY not in content for content in run.files.values())
    assert get_preset("aider").tool_files == [".aider*"]


def test_aider_without_a_configured_model_uses_its_own_key_and_a_plan_task_only_asks() -> None:
    run = render(get_preset("aider"), ctx(target=None), plan=True)
    assert "--model" not in run.argv and "OPENAI_API_KEY" not in run.env
    assert "OPENAI_API_KEY" in run.pass_env and "ANTHROPIC_API_KEY" in run.pass_env
    assert run.argv[run.argv.index("--chat-mode") + 1] == "ask"


def test_claude_code_prints_accepts_only_edits_and_reads_the_prompt_on_stdin() -> None:
    run = render(get_preset("claude-code"), ctx())
    assert run.argv[:4] == ["claude", "-p", "--output-format", "text"]
    assert run.argv[run.argv.index("--permission-mode") + 1] == "acceptEdits"
    assert "Bash(git:*)" in run.argv[run.argv.index("--allowedTools") + 1]
    assert run.stdin == "PROMPT TEXT" and not run.uses_model  # Claude Code speaks Anthropic's API only
    assert run.pass_env == ["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"]
    planning = render(get_preset("claude-code"), ctx(), plan=True)
    assert planning.argv[planning.argv.index("--permission-mode") + 1] == "plan"


def test_codex_gets_a_private_home_whose_config_points_at_the_project_model() -> None:
    run = render(get_preset("codex"), ctx())
    assert run.argv == ["codex", "exec", "--skip-git-repo-check", "-"] and run.stdin == "PROMPT TEXT"
    assert run.env == {"CODEX_HOME": "/scratch", "CONDUCTOR_MODEL_API_KEY": KEY}
    config = tomllib.loads(run.files["config.toml"])
    assert config["model"] == "coder-1" and config["model_provider"] == "conductor"
    provider = config["model_providers"]["conductor"]
    assert provider == {"name": "conductor", "base_url": "http://127.0.0.1:8765/v1", "wire_api": "responses",
                        "env_key": "CONDUCTOR_MODEL_API_KEY", "request_max_retries": 0, "stream_max_retries": 0}
    assert config["approval_policy"] == "never" and config["features"]["plugins"] is False
    own_login = tomllib.loads(render(get_preset("codex"), ctx(target=None)).files["config.toml"])
    assert "model_providers" not in own_login and own_login["approval_policy"] == "never"


def test_gemini_cli_takes_the_project_model_only_from_geminis_endpoint() -> None:
    with_gemini = render(get_preset("gemini-cli"), ctx(target=GEMINI))
    assert with_gemini.argv == ["gemini", "--approval-mode", "auto_edit", "--model", "gemini-2.5-flash"]
    assert with_gemini.env == {"GEMINI_API_KEY": KEY} and with_gemini.stdin == "PROMPT TEXT"
    elsewhere = render(get_preset("gemini-cli"), ctx(target=TARGET))
    assert elsewhere.argv == ["gemini", "--approval-mode", "auto_edit"] and elsewhere.env == {}
    assert render(get_preset("gemini-cli"), ctx(target=GEMINI), plan=True).argv == [
        "gemini", "--model", "gemini-2.5-flash"]  # no edits approved while planning


def test_opencode_gets_a_provider_config_that_reads_the_key_from_its_environment() -> None:
    run = render(get_preset("opencode"), ctx())
    assert run.argv == ["opencode", "run", "PROMPT TEXT", "--model", "conductor/coder-1"]
    assert run.shown == "opencode run '{prompt}' --model conductor/coder-1"  # the prompt is in the explanation
    config = json.loads(run.files["opencode.json"])
    provider = config["provider"]["conductor"]
    assert provider["options"] == {"baseURL": "http://127.0.0.1:8765/v1", "apiKey": "{env:CONDUCTOR_MODEL_API_KEY}"}
    assert list(provider["models"]) == ["coder-1"]
    assert run.env == {"OPENCODE_DISABLE_AUTOUPDATE": "true", "OPENCODE_CONFIG": "/scratch/opencode.json",
                       "CONDUCTOR_MODEL_API_KEY": KEY}


def test_a_project_adds_an_agent_and_changes_a_built_in_one_in_config_yaml() -> None:
    config = Config.model_validate({"agents": {
        "my-agent": {"command": "my-agent --task {prompt_file} --in {workspace}", "pass_env": ["MY_AGENT_TOKEN"]},
        "aider": {"step_args": ["--edit-format", "diff"], "llm": None},
    }})
    presets = all_presets(config)
    mine = render(presets["my-agent"], ctx())
    assert mine.argv == ["my-agent", "--task", "/scratch/prompt.md", "--in", "/work/attempt"]
    assert mine.pass_env == ["MY_AGENT_TOKEN"]
    aider = render(presets["aider"], ctx())
    assert aider.argv[-3:] == ["hello.py", "--edit-format", "diff"] and "--model" not in aider.argv
    dashed = render(presets["aider"], ctx(files=["-rf.py"]))
    assert "./-rf.py" in dashed.argv and "-rf.py" not in dashed.argv  # a file name is never taken for a flag
    assert "--no-gitignore" in aider.argv  # the rest of the built-in preset stays


def test_a_new_agent_without_a_command_and_an_unknown_preset_are_clear_errors() -> None:
    with pytest.raises(PresetError, match=r"agents.helper is not a built-in preset, so it needs a `command`"):
        all_presets(Config.model_validate({"agents": {"helper": {"pass_env": ["X_TOKEN"]}}}))
    with pytest.raises(PresetError, match=r"no agent preset `aidr`; choose one of aider, claude-code"):
        get_preset("aidr")


def test_a_key_on_a_command_line_or_in_a_file_is_refused() -> None:
    on_command_line = AgentPreset(command=["tool", "--key", "{api_key}"])
    with pytest.raises(PresetError, match=r"\{api_key\} may only appear in `llm.env`"):
        render(on_command_line, ctx())
    in_a_file = AgentPreset(command=["tool"], files={"secrets.json": '{"key": "{api_key}"}'})
    with pytest.raises(PresetError, match=r"may only appear in `llm\.env`"):
        render(in_a_file, ctx())


def test_the_project_model_is_used_only_when_its_key_is_set() -> None:
    config = Config(llm=LLMSettings(base_url="http://127.0.0.1:1/v1", model="m", api_key_env="MY_MODEL_KEY"))
    assert model_target(config, {}) is None
    found = model_target(config, {"MY_MODEL_KEY": "k-123456789", "CONDUCTOR_LLM_MODEL": "override"})
    assert found == ModelTarget("http://127.0.0.1:1/v1", "override", "k-123456789", "MY_MODEL_KEY")


def test_the_listed_command_line_shows_placeholders_and_stdin() -> None:
    assert describe(get_preset("codex")) == "codex exec --skip-git-repo-check - < {prompt}"
    assert describe(get_preset("aider"), TARGET).endswith(
        "--message-file {prompt_file} {files} --model openai/{model} --openai-api-base {base_url} "
        "--model-metadata-file {home}/model-metadata.json")


def test_a_step_prompt_carries_everything_that_will_be_checked() -> None:
    text = step_prompt(task())
    for needle in ("## Step step_002: Add the greeting", "Create hello.py with greet().", "- hello.py",
                   "- tests/*.py", "Touch no other file", "- Keep changes small", "- *.lock",
                   "at most 120 changed lines", "finish within 300 seconds", "you may commit in it"):
        assert needle in text, needle


def test_a_plan_prompt_asks_for_one_fenced_json_plan_matching_the_schema() -> None:
    text = plan_prompt(task(kind="plan", allowed_files=[], instruction="Plan this goal; Goal: greet"), load("plan"))
    assert text.startswith("Plan this goal; Goal: greet")
    assert "ONE JSON object inside a ```json fenced block" in text
    assert json.dumps(load("plan"), separators=(",", ":"), ensure_ascii=False) in text
