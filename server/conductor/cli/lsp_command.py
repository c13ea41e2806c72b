"""``conductor lsp``: run the language server (stdio by default, or ``--tcp HOST:PORT``)."""

from __future__ import annotations

import click

from conductor.cli.group import cli


@cli.command("lsp")
@click.option("--stdio", "stdio", is_flag=True, default=True, help="Talk LSP over stdin/stdout (default).")
@click.option("--tcp", "tcp", metavar="HOST:PORT", default=None, help="Listen on a TCP socket instead.")
def lsp_command(stdio: bool, tcp: str | None) -> None:
    """Run the Conductor language server (diagnostics, hover, completion, commands)."""
    if tcp is not None:
        _host, _, port = tcp.rpartition(":")
        if not port.isdigit():
            raise click.BadParameter("expected HOST:PORT, for example 127.0.0.1:2087", param_hint="--tcp")
    from conductor.lsp import main  # lazy: pygls and lsprotocol cost ~1 s to import; other commands never need them

    main(tcp)
