"""Entry point of the ``conductor`` console script: the group with every command module registered."""

from __future__ import annotations

import gc

from conductor.cli import engine_commands, handoff_commands, lsp_command, mcp_command, project_commands
from conductor.cli.group import cli

COMMAND_MODULES = (engine_commands, handoff_commands, lsp_command, mcp_command, project_commands)


def main() -> None:
    # A command reads documents of up to 2 MiB (hundreds of thousands of nodes) and builds as
    # many small objects from them: collect the young generation less often, like the server.
    gc.set_threshold(50_000, 20, 50)
    cli()
