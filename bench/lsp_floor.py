"""The floor of a language server's start-up: a bare pygls server that publishes one diagnostic.

    .venv/bin/python bench/lsp_floor.py          # speaks LSP on stdio

It imports what any pygls 2 server imports (``pygls.lsp.server`` and ``lsprotocol.types``) and
nothing else, answers ``initialize``, and on ``didOpen`` publishes one diagnostic on the first
line (on ``didChange`` too, counting the edits, so a client sees every version answered).
``bench_startup.py`` and ``bench_lsp.py`` start it beside ``conductor lsp`` in the same run:
what Conductor's server adds to start-up is the difference.
"""

from __future__ import annotations

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

server = LanguageServer("floor", "1")


def _publish(ls: LanguageServer, uri: str, version: int | None) -> None:
    line = lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=1))
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
        uri=uri, version=version, diagnostics=[lsp.Diagnostic(range=line, message="floor", source="floor")]))


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: LanguageServer, params: lsp.DidOpenTextDocumentParams) -> None:
    _publish(ls, params.text_document.uri, params.text_document.version)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: LanguageServer, params: lsp.DidChangeTextDocumentParams) -> None:
    _publish(ls, params.text_document.uri, params.text_document.version)


if __name__ == "__main__":
    server.start_io()
