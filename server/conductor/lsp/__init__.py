"""The Conductor language server: an adapter between LSP and the engine.

Protocol in, validation/engine calls, protocol out. ``server.py`` holds the thin handlers;
each feature lives in its own module over plain functions (diagnostics, hover, completion,
code actions, symbols, code lenses, commands, watching, approvals, settings).
"""

from __future__ import annotations

__all__ = ["main"]


def main(tcp: str | None = None) -> None:
    """Run the server on stdio, or on ``HOST:PORT`` when ``tcp`` is given."""
    from conductor.lsp.server import run

    run(tcp)
