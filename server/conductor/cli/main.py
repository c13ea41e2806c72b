"""Entry point of the ``conductor`` console script: the command group and its exit codes.

Exit codes (every command): 0 success; 1 the command ran and found a problem (validation
errors, a failed plan, a broken provenance chain); 2 usage error (bad option or argument);
3 the project or its policy cannot be used (no ``.conductor``, invalid policy).
Commands live in one module per group and register themselves on :data:`cli`.
"""

from __future__ import annotations

import click

from conductor import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="conductor")
def cli() -> None:
    """Conductor plans work for AI coding agents, hands each step to an executor,
    and checks the evidence that comes back.

    Exit codes: 0 ok, 1 problems found, 2 usage error, 3 unusable project or policy.
    """


def _register() -> None:
    # One import per command module; each adds its commands to ``cli``.
    from conductor.cli import (  # noqa: F401
        engine_commands,
        handoff_commands,
        lsp_command,
        mcp_command,
        project_commands,
    )


def main() -> None:
    _register()
    cli()
