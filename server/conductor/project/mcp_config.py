"""Editor configuration for the Conductor MCP server: what ``conductor init`` writes and
``conductor mcp --print-config`` prints.

Two shapes exist in the wild: VS Code's ``.vscode/mcp.json`` (``{"servers": {name: {"type":
"stdio", "command", "args"}}}``) and the ``{"mcpServers": {name: {"command", "args"}}}``
shape of Claude Code (``.mcp.json``), Cursor (``.cursor/mcp.json``) and Antigravity (its
per-user ``mcp_config.json``). Writing is additive and idempotent: a missing file is
created; an existing JSON file gets a ``conductor`` entry merged in only when it has none;
a file that is not plain JSON (VS Code allows comments) or not of the expected shape is
left untouched. A user's file is never overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conductor.project.files import atomic_write_text

SERVER_NAME = "conductor"


def vscode_entry(command: str = "conductor", args: list[str] | None = None) -> dict[str, Any]:
    return {"type": "stdio", "command": command, "args": list(args or ["mcp"])}


def mcp_servers_entry(command: str = "conductor", args: list[str] | None = None) -> dict[str, Any]:
    return {"command": command, "args": list(args or ["mcp"])}


def vscode_config(command: str = "conductor", args: list[str] | None = None) -> dict[str, Any]:
    """``.vscode/mcp.json``."""
    return {"servers": {SERVER_NAME: vscode_entry(command, args)}}


def mcp_servers_config(command: str = "conductor", args: list[str] | None = None) -> dict[str, Any]:
    """``.mcp.json`` (Claude Code), ``.cursor/mcp.json`` (Cursor), ``mcp_config.json`` (Antigravity)."""
    return {"mcpServers": {SERVER_NAME: mcp_servers_entry(command, args)}}


# Project-level files written by ``conductor init``: path → (top-level key, entry).
PROJECT_FILES: dict[str, tuple[str, dict[str, Any]]] = {
    ".vscode/mcp.json": ("servers", vscode_entry()),
    ".mcp.json": ("mcpServers", mcp_servers_entry()),
}


@dataclass
class ConfigReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def merge_server_entry(path: Path, key: str, entry: dict[str, Any]) -> str:
    """Add the ``conductor`` server to the JSON config at ``path``; ``created``/``updated``/``kept``."""
    if not path.exists():
        atomic_write_text(path, json.dumps({key: {SERVER_NAME: entry}}, indent=2) + "\n")
        return "created"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return "kept"  # not plain JSON (comments?) or unreadable: never rewrite what we cannot parse
    if not isinstance(data, dict):
        return "kept"
    servers = data.get(key)
    if servers is None:
        servers = data[key] = {}
    if not isinstance(servers, dict) or SERVER_NAME in servers:
        return "kept"
    servers[SERVER_NAME] = entry
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return "updated"


def write_project_configs(root: Path) -> ConfigReport:
    """Write (or complete) the project-level MCP configuration files under ``root``."""
    report = ConfigReport()
    for rel, (key, entry) in PROJECT_FILES.items():
        outcome = merge_server_entry(root / rel, key, dict(entry))
        getattr(report, outcome).append(rel)
    return report
