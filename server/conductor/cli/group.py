"""The ``conductor`` command group and its exit codes; every command module registers on :data:`cli`.

Exit codes (every command): 0 success; 1 the command ran and found a problem (validation
errors, a failed plan, a broken provenance chain, an unknown plan or step); 2 usage error (bad
option or argument); 3 the project or its policy cannot be used (no ``.conductor``, invalid
policy or configuration, a full disk).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from conductor import __version__

COMMANDS = {
    **dict.fromkeys(("build", "explore", "resume", "status", "explain", "events", "approve", "replay"),
                    "conductor.cli.engine_commands"),
    **dict.fromkeys(("agent", "verify", "keys", "handoff-metrics"), "conductor.cli.handoff_commands"),
    **dict.fromkeys(("init", "validate", "policy"), "conductor.cli.project_commands"),
    "lsp": "conductor.cli.lsp_command",
    "mcp": "conductor.cli.mcp_command",
}
"""Each command and the module that registers it: a command imports only its own module."""


class ConductorGroup(click.Group):
    """Loads a command's module when the command is first asked for; every command's engine refusal
    becomes one line on stderr and its exit code, never a traceback."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name])
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in dict.fromkeys(COMMANDS.values()):
            importlib.import_module(module)
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            api = sys.modules.get("conductor.engine.api")  # not imported: no engine refusal possible (`lsp` needs none)
            if api is None or not isinstance(exc, api.EngineError):
                raise
            from conductor.cli.output import refuse  # lazy: it imports the engine API, loaded by now anyway

            refuse(exc)


@click.group(cls=ConductorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="conductor")
def cli() -> None:
    """Conductor plans work for AI coding agents, hands each step to an executor,
    and checks the evidence that comes back.

    Exit codes: 0 ok, 1 problems found, 2 usage error, 3 unusable project or policy.
    """
