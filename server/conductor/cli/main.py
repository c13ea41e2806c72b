"""Entry point of the ``conductor`` console script."""

import click


@click.group()
def cli() -> None:
    """Conductor: plans work for AI coding agents and checks the evidence."""


def main() -> None:
    cli()
