"""What the connected client can do, read once from ``initialize`` (absent means no)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp


def _get(obj: Any, dotted: str, default: Any = None) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return default
    return obj


@dataclass
class Caps:
    code_description: bool = True
    pull_diagnostics: bool = False
    diagnostic_refresh: bool = False
    work_done_progress: bool = False
    show_message_request: bool = False
    show_document: bool = False
    watch_dynamic: bool = False
    code_lens_refresh: bool = False
    hierarchical_symbols: bool = False
    snippets: bool = False
    completion_markdown: bool = False
    insert_as_is: bool = False
    hover_markdown: bool = True
    configuration: bool = False
    create_files: bool = False

    @classmethod
    def of(cls, caps: lsp.ClientCapabilities) -> Caps:
        pull = _get(caps, "text_document.diagnostic") is not None
        refresh = bool(_get(caps, "workspace.diagnostics.refresh_support", False))
        hover_formats = _get(caps, "text_document.hover.content_format", None)
        modes = _get(caps, "text_document.completion.completion_item.insert_text_mode_support.value_set", []) or []
        return cls(
            code_description=_get(caps, "text_document.publish_diagnostics.code_description_support") is not False,
            pull_diagnostics=pull and refresh,
            diagnostic_refresh=refresh,
            work_done_progress=bool(_get(caps, "window.work_done_progress", False)),
            show_message_request=_get(caps, "window.show_message") is not None,
            show_document=bool(_get(caps, "window.show_document.support", False)),
            watch_dynamic=bool(_get(caps, "workspace.did_change_watched_files.dynamic_registration", False)),
            code_lens_refresh=bool(_get(caps, "workspace.code_lens.refresh_support", False)),
            hierarchical_symbols=bool(
                _get(caps, "text_document.document_symbol.hierarchical_document_symbol_support", False)),
            snippets=bool(_get(caps, "text_document.completion.completion_item.snippet_support", False)),
            completion_markdown=lsp.MarkupKind.Markdown in (
                _get(caps, "text_document.completion.completion_item.documentation_format", []) or []),
            insert_as_is=lsp.InsertTextMode.AsIs in modes,
            hover_markdown=hover_formats is None or lsp.MarkupKind.Markdown in hover_formats,
            configuration=bool(_get(caps, "workspace.configuration", False)),
            create_files=lsp.ResourceOperationKind.Create in (
                _get(caps, "workspace.workspace_edit.resource_operations", []) or []),
        )
