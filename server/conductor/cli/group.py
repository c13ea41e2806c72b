"""The ``conductor`` command group and its exit codes; every command module registers on :data:`cli`.

Exit codes (every command): 0 success; 1 the command ran and found a problem (validation
errors, a failed plan, a broken provenance chain, an unknown plan or step); 2 usage error (bad
option or argument); 3 the project or its policy cannot be used (no ``.conductor``, invalid
policy or configuration, a full disk).
"""

from __future__ import annotations

from typing import Any

import click

from conductor import __version__
from conductor.cli.output import refuse
from conductor.engine.api import EngineError


class ConductorGroup(click.Group):
    """Every command's engine refusal becomes one line on stderr and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EngineError as exc:
            refuse(exc)


@click.group(cls=ConductorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="conductor")
def cli() -> None:
    """Conductor plans work for AI coding agents, hands each step to an executor,
    and checks the evidence that comes back.

    Exit codes: 0 ok, 1 problems found, 2 usage error, 3 unusable project or policy.
    """
