"""Diagnostics: push (``publishDiagnostics``) or pull (``textDocument/diagnostic``, ``workspace/diagnostic``).

Scheduling: a document is validated at once when no validation of it is running; edits
that arrive while one runs coalesce into one more run on the latest version, after a pause
that scales with what the last run cost (a 15-line policy: none; a 5,000-line one: a
fraction of its cost). A result whose version is no longer the buffer's is dropped. Large
documents validate in a worker thread so hovers and other requests stay fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

from conductor.lsp.documents import Analysis
from conductor.lsp.positions import Lines
from conductor.validation import Diagnostic, detect_kind

if TYPE_CHECKING:
    from conductor.lsp.server import ConductorServer

SOURCE = "conductor"
THREAD_ABOVE_BYTES = 64 * 1024
MAX_PAUSE = 0.5
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".ruff_cache",
                       ".pytest_cache", "worktrees", ".tox", "dist", "build"})


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
        self.last_change: dict[str, float] = {}
        self.disk_published: set[str] = set()

    def changed(self, uri: str) -> None:
        """The buffer of ``uri`` changed (or its project context did): re-check it."""
        now = time.perf_counter()
        previous = self.last_change.get(uri, 0.0)
        self.last_change[uri] = now
        if uri in self.running and not self.running[uri].done():
            self.dirty.add(uri)
            return
        cached = self.ls.store.analyses.get(uri)
        cost = cached.cost if cached else 0.0
        burst = cached is not None and now - previous < max(cost, 0.02)
        pause = min(cost, MAX_PAUSE) if burst and cost > 0.01 else 0.0
        self.running[uri] = asyncio.ensure_future(self._run(uri, pause))

    async def _run(self, uri: str, pause: float) -> None:
        try:
            while True:
                if pause:
                    await asyncio.sleep(pause)
                self.dirty.discard(uri)
                await self._validate_and_publish(uri)
                if uri not in self.dirty:
                    return
                cached = self.ls.store.analyses.get(uri)
                pause = min(cached.cost, MAX_PAUSE) if cached else 0.0
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failure here must never kill the server
            self.ls.log_error(f"diagnostics for {uri} failed: {exc!r}")
        finally:
            self.running.pop(uri, None)

    async def _validate_and_publish(self, uri: str) -> None:
        ls = self.ls
        snapshot = ls.buffer(uri)
        if snapshot is None:
            return
        path, text, version = snapshot
        if len(text) > THREAD_ABOVE_BYTES:
            analysis = await asyncio.to_thread(ls.store.analyse, uri, path, text, version)
        else:
            analysis = ls.store.analyse(uri, path, text, version)
        if analysis is None:
            return
        current = ls.buffer(uri)
        if current is None or current[2] != version:
            return  # stale: a newer version is on its way
        if ls.caps.pull_diagnostics:
            return
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=convert(ls, analysis), version=version)
        )

    def publish_disk(self, path: Path) -> None:
        """An agent wrote (or removed) ``path`` while it is not open: publish its diagnostics."""
        ls = self.ls
        uri = path.as_uri()
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

    def revalidate_open(self, root: Path | None = None) -> None:
        """Re-check every open (and disk-published) document, e.g. after the policy changed."""
        uris = set(self.ls.open_uris()) | set(self.disk_published)
        for uri in sorted(uris):
            path = self.ls.path_of(uri)
            if path is None or detect_kind(path) is None:
                continue
            if root is not None and self.ls.store.project_root(path) not in (root, None):
                continue
            self.changed(uri)

    def cancel_all(self) -> None:
        for task in list(self.running.values()):
            task.cancel()


def pull_document(ls: ConductorServer, params: lsp.DocumentDiagnosticParams) -> lsp.RelatedFullDocumentDiagnosticReport:
    analysis = ls.analysis(params.text_document.uri)
    items = convert(ls, analysis) if analysis is not None else []
    return lsp.RelatedFullDocumentDiagnosticReport(items=items)


def conductor_files(root: Path, limit: int = 5000) -> Iterator[Path]:
    """Conductor documents under ``root`` (git, virtualenv and worktree folders skipped)."""
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in files:
            path = Path(folder) / name
            if detect_kind(path) is not None:
                count += 1
                yield path
                if count >= limit:
                    return


def pull_workspace(ls: ConductorServer, params: lsp.WorkspaceDiagnosticParams) -> lsp.WorkspaceDiagnosticReport:
    items: list[lsp.WorkspaceFullDocumentDiagnosticReport | lsp.WorkspaceUnchangedDocumentDiagnosticReport] = []
    seen: set[str] = set()
    for root in ls.workspace_roots():
        for path in conductor_files(root):
            uri = path.as_uri()
            if uri in seen:
                continue
            seen.add(uri)
            analysis = ls.analysis(uri)
            if analysis is None:
                continue
            with contextlib.suppress(Exception):
                items.append(lsp.WorkspaceFullDocumentDiagnosticReport(
                    uri=uri, items=convert(ls, analysis), version=analysis.version))
    return lsp.WorkspaceDiagnosticReport(items=items)
