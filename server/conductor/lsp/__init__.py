"""The Conductor language server: an adapter between LSP and the engine API.

Owns only the protocol: ``server.py`` holds the thin handlers; each feature lives in its own
module over the engine API and validation (diagnostics, hover, completion, code actions,
symbols, code lenses, commands, watching, approvals, settings). Every state it shows comes
from ``conductor.engine.api``; it keeps no projection of its own.
"""

from __future__ import annotations

from conductor.lsp.server import run

__all__ = ["main"]


def main(tcp: str | None = None) -> None:
    """Run the server on stdio, or on ``HOST:PORT`` when ``tcp`` is given."""
    run(tcp)
