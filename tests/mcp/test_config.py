"""`conductor init` writes the editors' project-level MCP configuration, never overwriting a user's file."""

from __future__ import annotations

import json
from pathlib import Path

from conductor.project.init import init_project
from conductor.project.mcp_config import mcp_servers_config, vscode_config, write_project_configs


def test_init_writes_vscode_and_claude_code_configs(tmp_path: Path) -> None:
    report = init_project(tmp_path)
    assert json.loads((tmp_path / ".vscode" / "mcp.json").read_text()) == {
        "servers": {"conductor": {"type": "stdio", "command": "conductor", "args": ["mcp"]}}}
    assert json.loads((tmp_path / ".mcp.json").read_text()) == {
        "mcpServers": {"conductor": {"command": "conductor", "args": ["mcp"]}}}
    assert {".vscode/mcp.json", ".mcp.json"} <= set(report.created)
    again = init_project(tmp_path)
    assert {".vscode/mcp.json", ".mcp.json"} <= set(again.kept) and not again.created and not again.updated


def test_existing_configs_get_the_entry_merged_only_when_absent(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    theirs = {"servers": {"github": {"type": "http", "url": "https://example.com/mcp"}}, "inputs": []}
    (tmp_path / ".vscode" / "mcp.json").write_text(json.dumps(theirs))
    mine = {"mcpServers": {"conductor": {"command": "/opt/bin/conductor", "args": ["mcp", "--allow-approve"]}}}
    (tmp_path / ".mcp.json").write_text(json.dumps(mine))
    report = write_project_configs(tmp_path)
    assert report.updated == [".vscode/mcp.json"] and report.kept == [".mcp.json"]
    merged = json.loads((tmp_path / ".vscode" / "mcp.json").read_text())
    assert merged["servers"]["github"] == theirs["servers"]["github"] and merged["inputs"] == []
    assert merged["servers"]["conductor"] == vscode_config()["servers"]["conductor"]
    assert json.loads((tmp_path / ".mcp.json").read_text()) == mine  # the user's own entry wins, untouched


def test_files_that_are_not_plain_json_or_of_another_shape_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / ".vscode").mkdir()
    jsonc = '{\n  // my servers\n  "servers": {}\n}\n'
    (tmp_path / ".vscode" / "mcp.json").write_text(jsonc)
    (tmp_path / ".mcp.json").write_text('{"mcpServers": ["not", "an", "object"]}')
    report = write_project_configs(tmp_path)
    assert sorted(report.kept) == [".mcp.json", ".vscode/mcp.json"]
    assert (tmp_path / ".vscode" / "mcp.json").read_text() == jsonc
    assert (tmp_path / ".mcp.json").read_text() == '{"mcpServers": ["not", "an", "object"]}'


def test_the_per_user_snippet_shape() -> None:
    assert mcp_servers_config("/usr/bin/conductor", ["mcp", "--root", "/p"]) == {
        "mcpServers": {"conductor": {"command": "/usr/bin/conductor", "args": ["mcp", "--root", "/p"]}}}


def test_the_conductor_mcp_package_does_not_shadow_the_sdk() -> None:
    import mcp
    from mcp.server.lowlevel import Server

    import conductor.mcp.server as ours

    sdk = Path(mcp.__file__).resolve().parent
    assert sdk != Path(ours.__file__).resolve().parent and sdk != Path(__file__).resolve().parent
    assert (sdk / "server" / "lowlevel").is_dir()
    assert ours.Server is Server
