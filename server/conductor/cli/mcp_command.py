"""``conductor mcp``: the handoff queue as an MCP server over stdio (or its config snippet)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from conductor.cli.group import cli
from conductor.engine import api


@cli.command("mcp")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False),
              help="Project folder (default: the nearest folder with .conductor, from the working directory).")
@click.option("--allow-approve", is_flag=True,
              help="Also offer the `approve` tool (approving a LOW-confidence step is a person's decision; off "
              "by default).")
@click.option("--wait", "wait_seconds", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Default seconds submit_result waits for Conductor's verdict.")
@click.option("--print-config", is_flag=True,
              help='Print the {"mcpServers": …} snippet for an IDE that keeps MCP servers per user '
              "(Antigravity's mcp_config.json, Cursor, Claude Code) and exit.")
def mcp_command(root: Path | None, allow_approve: bool, wait_seconds: float, print_config: bool) -> None:
    """Serve Conductor's handoff queue to MCP agents over stdio.

    Tools: next_task (claim the next ready task), submit_result (write the result, wait for the
    verified verdict and its evidence), status, explain, and approve with --allow-approve.
    Resources: conductor://policy and conductor://plan/current. Results submitted here are the
    same files as the file protocol and are verified the same way by the running engine.
    """
    if print_config:
        click.echo(json.dumps(api.mcp_client_config(root), indent=2))
        return
    from conductor.mcp.server import run  # lazy: the MCP SDK costs ~1 s to import; other commands never need it

    with contextlib.suppress(KeyboardInterrupt):
        run(root.resolve() if root is not None else None, allow_approve=allow_approve, wait_seconds=wait_seconds)
