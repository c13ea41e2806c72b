"""Diagnostics: push (``publishDiagnostics``) or pull (``textDocument/diagnostic``, ``workspace/diagnostic``).

Scheduling: a document is validated at once when no validation of it is running; edits
that arrive while one runs coalesce into one more run on the latest version, after a pause
that scales with what the last run cost (a 15-line policy: none; a 5,000-line one: a
fraction of its cost). A result whose version is no longer the buffer's is dropped. Every
validation runs in a worker thread, so hovers and other requests stay fast; the workspace
pull walks the folders in a worker thread too and stops when the request is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

from conductor.lsp.documents import Analysis
from conductor.lsp.positions import Lines
from conductor.validation import Diagnostic, detect_kind

if TYPE_CHECKING:
    from conductor.engine import api
    from conductor.lsp.server import ConductorServer
else:  # the engine API loads on first use (see conductor.lsp.lazy_api)
    from conductor.lsp.lazy_api import api

log = logging.getLogger("conductor.lsp.diagnostics")
SOURCE = "conductor"
THREAD_ABOVE_BYTES = 64 * 1024
MAX_PAUSE = 0.5
MAX_WORKSPACE_FILES = 5000


def to_lsp(d: Diagnostic, lines: Lines, *, code_description: bool = True) -> lsp.Diagnostic:
    return lsp.Diagnostic(
        range=lines.range(d.range),
        severity=lsp.DiagnosticSeverity(int(d.severity)),
        code=d.code,
        code_description=lsp.CodeDescription(href=d.docs_url) if code_description else None,
        source=SOURCE,
        message=d.message,
        data=dict(d.data) or None,
    )


def convert(ls: ConductorServer, analysis: Analysis) -> list[lsp.Diagnostic]:
    if not ls.settings.diagnostics_enabled(analysis.kind):
        return []
    lines = Lines(analysis.text, ls.encoding)
    with_href = ls.caps.code_description
    out = [to_lsp(d, lines, code_description=with_href) for d in analysis.diagnostics]
    out.extend(ls.steps.diagnostics_for(analysis, lines))
    return out


class Scheduler:
    """Per-document validation runs for push clients (and the cache pull requests read)."""

    def __init__(self, ls: ConductorServer) -> None:
        self.ls = ls
        self.running: dict[str, asyncio.Task[None]] = {}
        self.dirty: set[str] = set()
        self.disk_published: set[str] = set()

    def changed(self, uri: str) -> None:
        """The buffer of ``uri`` changed (or its project context did): re-check it.

        Checked at once when no check of it is running; otherwise the changes that arrive
        meanwhile coalesce into one more check of the latest version, after a pause that
        scales with what a check of this document costs (none for a small file).
        """
        if uri in self.running and not self.running[uri].done():
            self.dirty.add(uri)
            return
        self.running[uri] = asyncio.ensure_future(self._run(uri))

    async def _run(self, uri: str) -> None:
        try:
            while True:
                self.dirty.discard(uri)
                await self._validate_and_publish(uri)
                if uri not in self.dirty:
                    return
                cached = self.ls.store.analyses.get(uri)
                cost = cached.cost if cached else 0.0
                if cost > 0.02:
                    await asyncio.sleep(min(cost / 2, MAX_PAUSE))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failure here must never kill the server
            self.ls.log_error(f"diagnostics for {uri} failed: {exc!r}")
        finally:
            self.running.pop(uri, None)

    async def _validate_and_publish(self, uri: str) -> None:
        ls = self.ls
        snapshot = ls.buffer(uri) if ls.is_open(uri) else await asyncio.to_thread(ls.buffer, uri)
        if snapshot is None:
            return
        path, text, version, unreadable = snapshot
        analysis = await asyncio.to_thread(ls.store.analyse, uri, path, text, version, None, unreadable)
        if analysis is None:
            return
        current = ls.buffer(uri) if ls.is_open(uri) else snapshot
        if current is None or current[2] != version:
            log.debug("drop stale diagnostics of %s v%s (buffer is v%s)", uri, version, current and current[2])
            return  # stale: a newer version is on its way
        log.debug("publish %s v%s: %s", uri, version, [d.code for d in analysis.diagnostics])
        if ls.caps.pull_diagnostics:
            ls.first_published.set()
            return
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=convert(ls, analysis), version=version)
        )
        ls.first_published.set()

    def publish_disk(self, path: Path) -> None:
        """An agent wrote (or removed) ``path`` while it is not open: publish its diagnostics."""
        ls = self.ls
        uri = path.as_uri()
        if ls.caps.pull_diagnostics:
            ls.refresh_diagnostics()
            return
        if ls.is_open(uri):
            self.changed(uri)
            return
        if not path.exists():
            ls.store.forget(uri)
            if uri in self.disk_published and not ls.caps.pull_diagnostics:
                ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
            self.disk_published.discard(uri)
            return
        self.changed(uri)
        self.disk_published.add(uri)

    def revalidate_open(self, root: Path | None = None, kinds: tuple[str, ...] | None = None) -> None:
        """Re-check every open (and disk-published) document, e.g. after the policy changed."""
        if self.ls.caps.pull_diagnostics:
            self.ls.refresh_diagnostics()
            return
        uris = set(self.ls.open_uris()) | set(self.disk_published)
        for uri in sorted(uris):
            path = self.ls.path_of(uri)
            kind = detect_kind(path) if path is not None else None
            if path is None or kind is None or (kinds is not None and kind not in kinds):
                continue
            if root is not None and self.ls.store.project_root(path) not in (root, None):
                continue
            self.changed(uri)

    def cancel_all(self) -> None:
        for task in list(self.running.values()):
            task.cancel()


async def pull_document(ls: ConductorServer,
                        params: lsp.DocumentDiagnosticParams) -> lsp.RelatedFullDocumentDiagnosticReport:
    analysis = await ls.analysis(params.text_document.uri)
    items = convert(ls, analysis) if analysis is not None else []
    ls.first_published.set()
    return lsp.RelatedFullDocumentDiagnosticReport(items=items)


def _workspace_analyses(ls: ConductorServer, roots: list[Path], cancel: threading.Event) -> list[Analysis]:
    """Every Conductor document under ``roots``, validated (in a worker thread; stops when cancelled)."""
    out: list[Analysis] = []
    seen: set[str] = set()
    for path, _explicit in api.conductor_files(roots, cancel=cancel, limit=MAX_WORKSPACE_FILES):
        if cancel.is_set():
            raise api.Cancelled("workspace diagnostics cancelled")
        uri = path.as_uri()
        if uri in seen:
            continue
        seen.add(uri)
        snapshot = ls.buffer(uri) if not ls.is_open(uri) else None
        if ls.is_open(uri):
            doc = ls.workspace.get_text_document(uri)
            snapshot = (path, doc.source, doc.version, None)
        if snapshot is None:
            continue
        with contextlib.suppress(Exception):
            analysis = ls.store.analyse(uri, snapshot[0], snapshot[1], snapshot[2], None, snapshot[3])
            if analysis is not None:
                out.append(analysis)
    return out


async def pull_workspace(ls: ConductorServer, params: lsp.WorkspaceDiagnosticParams) -> lsp.WorkspaceDiagnosticReport:
    cancel = threading.Event()
    try:
        analyses = await asyncio.to_thread(_workspace_analyses, ls, ls.workspace_roots(), cancel)
    except asyncio.CancelledError:
        cancel.set()  # $/cancelRequest: the walk stops at the next file
        raise
    items: list[lsp.WorkspaceFullDocumentDiagnosticReport | lsp.WorkspaceUnchangedDocumentDiagnosticReport] = [
        lsp.WorkspaceFullDocumentDiagnosticReport(uri=a.uri, items=convert(ls, a), version=a.version)
        for a in analyses]
    return lsp.WorkspaceDiagnosticReport(items=items)
