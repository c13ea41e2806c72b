"""`conductor agent --preset/--command` as real processes: a whole build, secrets, the sandbox, the listing.

The tool here is a stand-in CLI (fake_tool.py) defined as a preset in config.yaml, so every part
of the machinery runs for real — config, prompt, sandbox, environment, output capture, the
plan parsed from a prose-wrapped reply — without a model. Real tools: test_aider_e2e.py,
test_codex_e2e.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.agents.support import FAKE_TOOL, HELLO, TEST_HELLO, TWO_STEP_PLAN, Project, clean_env
from tests.conftest import require_tool

FOO = "foo-secret-value-0123456789"
BAR = "bar-secret-value-9876543210"


def fake_preset(script: Path, **extra: Any) -> dict[str, Any]:
    return {"agents": {"fake": {"description": "a stand-in CLI",
                                "command": [sys.executable, str(FAKE_TOOL), "--message-file", "{prompt_file}",
                                            "{files}"],
                                "env": {"FAKE_TOOL_SCRIPT": str(script)}, **extra}}}


def make(tmp_path: Path, script: dict[str, Any], env: dict[str, str] | None = None, **preset: Any) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    # The script lives inside the project (read-only in the sandbox); the sandbox's /tmp is private.
    path = root / ".conductor" / "handoff" / "fake-script.json"
    project = Project.create(root, env, config=fake_preset(path, **preset), behavior={"max_repairs": 0})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(script))
    return project


def results(project: Project) -> dict[str, dict[str, Any]]:
    return {p.name.removesuffix(".result.json"): json.loads(p.read_text())
            for p in project.handoff_files("*.result.json")}


def test_a_preset_plans_and_runs_both_steps_of_a_build_in_the_sandbox(tmp_path: Path) -> None:
    require_tool("bwrap")
    project = make(tmp_path, {"plan": TWO_STEP_PLAN, "step_001": {"write": {"hello.py": HELLO}},
                              "step_002": {"write": {"test_hello.py": TEST_HELLO}}})
    built, agent_out = project.build("Create a greeting module with a test", "--preset", "fake")
    assert built.returncode == 0, built.stdout + built.stderr + agent_out
    assert (project.root / "hello.py").read_text() == HELLO  # merged into the user's branch
    assert (project.root / "test_hello.py").read_text() == TEST_HELLO
    assert project.conductor("verify").returncode == 0

    explanation = project.handoff_files("step_001.explanation.md")[0].read_text()
    assert "bubblewrap sandbox (network allow)" in explanation
    assert "## Prompt" in explanation and "Create hello.py with greet(name)." in explanation
    by_step = results(project)
    assert by_step["step_000"]["plan"]["steps"][1]["id"] == "step_002"  # parsed out of prose and a fence
    if "agent_run" in by_step["step_001"]:  # contract 2.0 results carry what ran
        run = by_step["step_001"]["agent_run"]
        assert run["agent"] == "fake" and run["exit_code"] == 0 and run["duration_seconds"] >= 0
        assert "--message-file" in run["command"]


def test_an_agent_gets_only_the_secrets_its_preset_names_and_output_is_redacted(tmp_path: Path) -> None:
    plan = {**TWO_STEP_PLAN, "steps": [{**TWO_STEP_PLAN["steps"][0], "allowed_files": ["hello.py", "env.txt"]}]}
    env = clean_env(FOO_API_KEY=FOO, BAR_TOKEN=BAR, OTHER_API_KEY=BAR + "x", GITHUB_TOKEN=BAR + "y")
    project = make(tmp_path, {"plan": plan, "step_001": {"write": {"hello.py": HELLO}, "env_names_to": "env.txt",
                                                         "print_env": "FOO_API_KEY"}},
                   env, pass_env=["FOO_API_KEY"])
    built, agent_out = project.build("Create a greeting", "--preset", "fake")
    assert built.returncode == 0, built.stdout + built.stderr + agent_out

    names = (project.root / "env.txt").read_text().split()
    assert "FOO_API_KEY" in names
    assert not {"BAR_TOKEN", "OTHER_API_KEY", "GITHUB_TOKEN"} & set(names)
    everything = "".join(p.read_text(errors="replace") for p in (project.root / ".conductor").rglob("*")
                         if p.is_file() and p.suffix in (".md", ".json", ".jsonl", ".log"))
    assert "FOO_API_KEY=[REDACTED]" in everything  # what the tool printed, redacted in its explanation
    assert FOO not in everything and BAR not in everything


def test_writes_outside_the_working_copy_fail_read_only_and_nothing_lands(tmp_path: Path) -> None:
    require_tool("bwrap")
    root = tmp_path / "proj"
    hook = root / ".git" / "hooks" / "post-commit"
    plan = {**TWO_STEP_PLAN, "steps": [TWO_STEP_PLAN["steps"][0]]}
    project = make(tmp_path, {"plan": plan, "step_001": {"write": {
        "hello.py": HELLO, str(root / "injected.txt"): "pwned\n", str(hook): "#!/bin/sh\necho owned\n",
        str(Path.home() / ".bashrc-conductor-test"): "alias ls=rm\n"}}})
    built, agent_out = project.build("Create a greeting", "--preset", "fake")
    assert built.returncode == 0, built.stdout + built.stderr + agent_out
    assert not (root / "injected.txt").exists() and not hook.exists()
    assert not (Path.home() / ".bashrc-conductor-test").exists()
    explanation = project.handoff_files("step_001.explanation.md")[0].read_text()
    assert explanation.count("Read-only file system") == 3
    assert (root / "hello.py").read_text() == HELLO


def test_a_required_sandbox_without_bubblewrap_refuses_to_start(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    project = Project.create(root, behavior={"sandbox": "required"})
    project.env["PATH"] = str(tmp_path / "no-tools-here")
    done = project.conductor("agent", "--command", "true", "--once")
    assert done.returncode == 3
    assert "behavior.sandbox is `required` but bubblewrap (`bwrap`) is not installed" in done.stderr
    assert "Traceback" not in done.stderr


def test_network_deny_cuts_a_command_off_from_a_server_on_loopback(tmp_path: Path) -> None:
    require_tool("bwrap")
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[object] = []

    def serve() -> None:
        with contextlib.suppress(OSError):  # closed at the end of the test
            accepted.append(server.accept())

    threading.Thread(target=serve, daemon=True).start()
    port = server.getsockname()[1]
    probe = (f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3)\""
             " && echo CONNECTED > hello.py || echo REFUSED > hello.py")
    plan = {**TWO_STEP_PLAN, "steps": [TWO_STEP_PLAN["steps"][0]]}
    root = tmp_path / "proj"
    root.mkdir()
    project = Project.create(root, behavior={"network": "deny", "max_repairs": 0})
    script = root / "plan.py"
    script.write_text(f"import json, os\nif os.environ['CONDUCTOR_TASK_KIND'] == 'plan':\n"
                      f"    print(json.dumps({plan!r}))\nelse:\n    os.system({probe!r})\n")
    try:
        built, agent_out = project.build("Probe the network", "--command", f"{sys.executable} {script}")
    finally:
        server.close()
    assert built.returncode == 0, built.stdout + built.stderr + agent_out
    assert (root / "hello.py").read_text() == "REFUSED\n" and accepted == []


def test_preset_list_shows_each_tool_its_command_and_whether_it_is_installed(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    project = Project.create(root, config={"agents": {"mine": {"command": "mine --do {prompt_file}",
                                                               "trusted": "anything", "tested": "never"}}})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aider").write_text("#!/bin/sh\necho aider 0.0.test\n")
    (bin_dir / "aider").chmod(0o755)
    project.env["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    text = project.conductor("agent", "--preset", "list")
    assert text.returncode == 0, text.stderr
    for name in ("aider", "claude-code", "codex", "gemini-cli", "opencode", "mine"):
        assert f"\n{name}: " in "\n" + text.stdout
    assert f"status:   installed ({bin_dir / 'aider'})" in text.stdout
    assert "not installed (npm install -g @anthropic-ai/claude-code)" in text.stdout
    listed = json.loads(project.conductor("agent", "--preset", "list", "--json").stdout)
    rows = {row["name"]: row for row in listed["presets"]}
    assert rows["aider"]["installed"] is True and rows["mine"]["command"] == "mine --do {prompt_file}"
    assert rows["codex"]["command"] == "codex exec --skip-git-repo-check - < {prompt}"


def test_a_preset_whose_tool_is_missing_says_how_to_install_it(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    project = Project.create(root)
    project.env["PATH"] = f"{tmp_path / 'empty'}:/usr/bin:/bin"
    done = project.conductor("agent", "--preset", "claude-code", "--once")
    assert done.returncode == 3
    assert ("preset `claude-code` runs `claude`, which is not installed or not on PATH "
            "(install: npm install -g @anthropic-ai/claude-code)") in done.stderr
    unknown = project.conductor("agent", "--preset", "nope")
    assert unknown.returncode == 3 and "no agent preset `nope`" in unknown.stderr


@pytest.mark.parametrize("bad", ["agents: {Bad Name: {command: x}}", "agents: {x: {pass_env: [not a name]}}"])
def test_an_invalid_agents_section_is_a_clear_error(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    project = Project.create(root)
    (root / ".conductor" / "config.yaml").write_text(bad + "\n")
    done = project.conductor("agent", "--preset", "list")
    assert done.returncode == 3 and "invalid configuration" in done.stderr and "Traceback" not in done.stderr
