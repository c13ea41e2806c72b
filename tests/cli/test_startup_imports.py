"""The CLI imports only what a command needs: ``--version`` nothing, ``status`` and ``validate`` no
model client, MCP SDK, language server, git layer or cryptography.

Each case runs the console script's ``main()`` in a fresh interpreter and reads ``sys.modules``
afterwards (what was imported, not how long it took: figures live in ``bench/bench_startup.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("openai", "mcp", "cryptography", "pygls", "lsprotocol", "conductor.llm", "conductor.mcp", "conductor.lsp",
         "conductor.git", "conductor.handoff", "conductor.provenance", "conductor.engine.runner", "watchfiles")


def loaded_by(argv: list[str], cwd: Path, tmp_path: Path) -> tuple[int, str, set[str]]:
    """Exit code, stdout and every module loaded by ``conductor <argv>`` run in a fresh interpreter."""
    script = (
        "import json, sys\n"
        f"sys.argv = ['conductor', *{argv!r}]\n"
        "from conductor.cli.main import main\n"
        "code = 0\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code or 0\n"
        f"open({str(tmp_path / 'modules.json')!r}, 'w').write(json.dumps(sorted(sys.modules)))\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=env)
    modules = set(json.loads((tmp_path / "modules.json").read_text()))
    return proc.returncode, proc.stdout, modules


def family(modules: set[str], name: str) -> set[str]:
    return {m for m in modules if m == name or m.startswith(name + ".")}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    done = subprocess.run([sys.executable, "-m", "conductor", "init", "."], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return root


def test_version_imports_neither_click_nor_the_engine(tmp_path: Path):
    code, out, modules = loaded_by(["--version"], tmp_path, tmp_path)
    assert code == 0
    assert out == "conductor, version " + __import__("conductor").__version__ + "\n"
    for name in ("click", "pydantic", "yaml", "conductor.engine", "conductor.validation", "conductor.cli.group",
                 *HEAVY):
        assert not family(modules, name), f"--version loaded {sorted(family(modules, name))}"


def test_version_prints_what_the_click_option_prints(tmp_path: Path):
    """The shortcut answers exactly as ``click.version_option`` does (``-h`` next to it goes through click)."""
    fast = subprocess.run([sys.executable, "-m", "conductor", "--version"], capture_output=True, text=True, timeout=60)
    slow = subprocess.run([sys.executable, "-m", "conductor", "--version", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert fast.returncode == slow.returncode == 0
    assert fast.stdout == slow.stdout


@pytest.mark.parametrize("argv", [["status"], ["validate"], ["status", "--json"]])
def test_status_and_validate_load_no_model_client_mcp_server_git_or_crypto(project: Path, tmp_path: Path,
                                                                          argv: list[str]):
    code, _out, modules = loaded_by(argv, project, tmp_path)
    assert code == 0
    for name in HEAVY:
        assert not family(modules, name), f"{argv} loaded {sorted(family(modules, name))}"
    others = {"conductor.cli.handoff_commands", "conductor.cli.lsp_command", "conductor.cli.mcp_command"}
    assert not modules & others, "a command loads only its own module"


def test_help_still_lists_every_command(tmp_path: Path):
    from conductor.cli.group import COMMANDS

    proc = subprocess.run([sys.executable, "-m", "conductor", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    listed = {line.split()[0] for line in proc.stdout.split("Commands:", 1)[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)


def test_an_unknown_command_is_a_usage_error(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "conductor", "no-such-command"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "No such command 'no-such-command'" in proc.stderr


def test_an_engine_refusal_is_still_one_line_and_its_exit_code(tmp_path: Path):
    """Outside a project ``status`` is refused with exit 3 and one line, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "conductor", "status"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.startswith("conductor: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_every_registered_command_is_in_the_table_of_lazy_commands():
    """A command module registering a command the table does not name would hide it from `conductor <name>`."""
    from conductor.cli import engine_commands, handoff_commands, lsp_command, mcp_command, project_commands
    from conductor.cli.group import COMMANDS, cli

    modules = {m.__name__ for m in (engine_commands, handoff_commands, lsp_command, mcp_command, project_commands)}
    assert set(cli.commands) == set(COMMANDS)
    assert set(COMMANDS.values()) == modules
    for name, module in COMMANDS.items():
        assert cli.commands[name].callback.__module__ == module, name
