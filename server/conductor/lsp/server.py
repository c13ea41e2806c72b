"""The language server: thin handlers from LSP methods to the feature modules.

Each handler converts positions in, calls a plain function (validation, schema lookup,
engine facade), converts the answer out. No business logic lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from conductor import __version__
from conductor.lsp import code_actions, code_lens, commands, completion, diagnostics, hover, symbols, watch
from conductor.lsp.approvals import Approvals
from conductor.lsp.capabilities import Caps
from conductor.lsp.documents import Analysis, DocumentStore, read_text
from conductor.lsp.positions import Lines
from conductor.lsp.settings import Settings
from conductor.lsp.steps import StepTracker
from conductor.project.layout import find_project_root
from conductor.validation import detect_kind

log = logging.getLogger("conductor.lsp")
F = TypeVar("F", bound=Callable[..., Any])


class ConductorServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("conductor", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.store = DocumentStore()
        self.settings = Settings()
        self.caps = Caps()
        self.scheduler = diagnostics.Scheduler(self)
        self.steps = StepTracker(self)
        self.approvals = Approvals(self)
        self.jobs = commands.Jobs(self)
        self.files = completion.Files()
        self.background: set[asyncio.Future[Any]] = set()
        self.stopping = asyncio.Event()
        self.watching = "none"

    # ------------------------------------------------------------------ helpers
    @property
    def encoding(self) -> str:
        try:
            encoding = self.workspace.position_encoding or "utf-16"
        except Exception:
            return "utf-16"
        return str(getattr(encoding, "value", encoding))

    @staticmethod
    def path_of(uri: str) -> Path | None:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            return None
        return Path(unquote(parsed.path))

    def is_open(self, uri: str) -> bool:
        try:
            return uri in self.workspace.text_documents
        except Exception:
            return False

    def open_uris(self) -> list[str]:
        try:
            return list(self.workspace.text_documents)
        except Exception:
            return []

    def buffer(self, uri: str) -> tuple[Path, str, int | None] | None:
        """(path, text, version) of ``uri``: the open buffer, else the file on disk."""
        path = self.path_of(uri)
        if path is None:
            return None
        if self.is_open(uri):
            doc = self.workspace.get_text_document(uri)
            return path, doc.source, doc.version
        text = read_text(path)
        return (path, text, None) if text is not None else None

    def analysis(self, uri: str) -> Analysis | None:
        snapshot = self.buffer(uri)
        if snapshot is None:
            return None
        path, text, version = snapshot
        if detect_kind(path) is None:
            return None
        return self.store.analyse(uri, path, text, version)

    def workspace_roots(self) -> list[Path]:
        roots: list[Path] = []
        try:
            for folder in self.workspace.folders.values():
                path = self.path_of(folder.uri)
                if path is not None:
                    roots.append(path)
            if not roots and self.workspace.root_uri:
                path = self.path_of(self.workspace.root_uri)
                if path is not None:
                    roots.append(path)
        except Exception:
            pass
        return roots

    def project_roots(self) -> list[Path]:
        found = []
        for root in self.workspace_roots():
            project = find_project_root(root) if root.exists() else None
            if project is not None and project not in found:
                found.append(project)
        return found

    def project_root_or_workspace(self) -> Path | None:
        projects = self.project_roots()
        if projects:
            return projects[0]
        roots = self.workspace_roots()
        return roots[0] if roots else None

    def lines(self, text: str) -> Lines:
        return Lines(text, self.encoding)

    def log_info(self, message: str) -> None:
        with contextlib.suppress(Exception):
            self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Info, message=message))

    def log_error(self, message: str) -> None:
        log.error(message)
        with contextlib.suppress(Exception):
            self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Error, message=message))

    def show(self, message: str, kind: lsp.MessageType = lsp.MessageType.Info) -> None:
        with contextlib.suppress(Exception):
            self.window_show_message(lsp.ShowMessageParams(type=kind, message=message))

    def refresh_code_lenses(self) -> None:
        if self.caps.code_lens_refresh:
            with contextlib.suppress(Exception):
                self.workspace_code_lens_refresh(None)

    def refresh_diagnostics(self) -> None:
        if self.caps.diagnostic_refresh:
            with contextlib.suppress(Exception):
                self.workspace_diagnostic_refresh(None)


server = ConductorServer()


def guarded(fn: F) -> F:
    """An exception in a handler becomes an LSP error response and a log line, never a dead server."""
    if asyncio.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run_async(ls: ConductorServer, *args: Any) -> Any:
            try:
                return await fn(ls, *args)
            except JsonRpcException:
                raise
            except Exception as exc:
                raise _internal_error(ls, fn, exc) from exc
        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(ls: ConductorServer, *args: Any) -> Any:
        try:
            return fn(ls, *args)
        except JsonRpcException:
            raise
        except Exception as exc:
            raise _internal_error(ls, fn, exc) from exc
    return run  # type: ignore[return-value]


def _internal_error(ls: ConductorServer, fn: Callable[..., Any], exc: Exception) -> JsonRpcInternalError:
    """Log a handler's failure and turn it into the error response the client receives."""
    message = f"{fn.__name__} failed: {type(exc).__name__}: {exc}"
    ls.log_error(message)
    return JsonRpcInternalError(message)


# ---------------------------------------------------------------------- lifecycle


@server.feature(lsp.INITIALIZE)
@guarded
def initialize(ls: ConductorServer, params: lsp.InitializeParams) -> None:
    ls.caps = Caps.of(params.capabilities)
    ls.settings.update(params.initialization_options)
    threading.Thread(target=_warm_up, name="conductor-warm-up", daemon=True).start()


def _warm_up() -> None:
    """Load and check the schemas while the client finishes its handshake (first diagnostics sooner)."""
    from conductor.contract.schemas import KINDS
    from conductor.validation import schema_rules

    with contextlib.suppress(Exception):
        for kind in KINDS:
            schema_rules.warm_up(kind)


@server.feature(lsp.INITIALIZED)
@guarded
async def initialized(ls: ConductorServer, params: lsp.InitializedParams) -> None:
    await fetch_settings(ls)
    ls.watching = await watch.start(ls)
    try:  # the baseline of the handoff view, so later changes are reported as changes
        ls.steps.apply(await asyncio.to_thread(ls.steps.scan_all), notify=False)
    except Exception as exc:
        ls.log_error(f"reading the handoff state failed: {exc!r}")
    if ls.process_id:
        task = asyncio.ensure_future(watch_parent(ls, ls.process_id))
        ls.background.add(task)
    ls.log_info(f"Conductor language server {__version__} ready (file watching: {ls.watching}, "
                f"diagnostics: {'pull' if ls.caps.pull_diagnostics else 'push'}, encoding: {ls.encoding})")


async def fetch_settings(ls: ConductorServer) -> None:
    if not ls.caps.configuration:
        return
    try:
        result = await asyncio.wait_for(ls.workspace_configuration_async(lsp.ConfigurationParams(
            items=[lsp.ConfigurationItem(section="conductor")])), 5)
    except Exception as exc:
        ls.log_info(f"workspace/configuration unavailable: {exc!r}")
        return
    if result:
        ls.settings.update(result[0])


async def watch_parent(ls: ConductorServer, pid: int) -> None:
    """Exit when the editor that started us is gone (it may die without sending exit)."""
    while True:
        await asyncio.sleep(2)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.info("parent process %s is gone; exiting", pid)
            os._exit(0)
        except PermissionError:
            pass


@server.feature(lsp.SHUTDOWN)
def shutdown(ls: ConductorServer, params: Any) -> None:
    ls.stopping.set()
    ls.scheduler.cancel_all()
    for task in list(ls.background):
        task.cancel()


@server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
@guarded
async def did_change_configuration(ls: ConductorServer, params: lsp.DidChangeConfigurationParams) -> None:
    if isinstance(params.settings, dict) and params.settings:
        ls.settings.update(params.settings)
    await fetch_settings(ls)
    ls.scheduler.revalidate_open()


# ---------------------------------------------------------------------- documents


def _document_changed(ls: ConductorServer, uri: str, closed: bool = False) -> None:
    path = ls.path_of(uri)
    if path is None:
        return
    kind = detect_kind(path)
    if kind == "policy":
        root = ls.store.project_root(path)
        text = None if closed else ls.workspace.get_text_document(uri).source
        ls.store.policy_changed(root, text, closed=closed)
        ls.scheduler.revalidate_open(root)
        ls.refresh_diagnostics()
    if kind is None:
        return
    if closed:
        ls.store.forget(uri)
        if not ls.caps.pull_diagnostics:
            ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        return
    if not ls.caps.pull_diagnostics:
        ls.scheduler.changed(uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
@guarded
def did_open(ls: ConductorServer, params: lsp.DidOpenTextDocumentParams) -> None:
    _document_changed(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
@guarded
def did_change(ls: ConductorServer, params: lsp.DidChangeTextDocumentParams) -> None:
    _document_changed(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
@guarded
def did_save(ls: ConductorServer, params: lsp.DidSaveTextDocumentParams) -> None:
    ls.steps.refresh()


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
@guarded
def did_close(ls: ConductorServer, params: lsp.DidCloseTextDocumentParams) -> None:
    _document_changed(ls, params.text_document.uri, closed=True)


@server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
@guarded
def did_change_watched_files(ls: ConductorServer, params: lsp.DidChangeWatchedFilesParams) -> None:
    changes = []
    for change in params.changes:
        path = ls.path_of(change.uri)
        if path is not None:
            changes.append((path, change.type == lsp.FileChangeType.Deleted))
    watch.on_changes(ls, changes)


# ---------------------------------------------------------------------- diagnostics (pull)


@server.feature(lsp.TEXT_DOCUMENT_DIAGNOSTIC, lsp.DiagnosticOptions(
    identifier="conductor", inter_file_dependencies=True, workspace_diagnostics=True))
@guarded
def document_diagnostic(ls: ConductorServer, params: lsp.DocumentDiagnosticParams) -> Any:
    return diagnostics.pull_document(ls, params)


@server.feature(lsp.WORKSPACE_DIAGNOSTIC)
@guarded
async def workspace_diagnostic(ls: ConductorServer, params: lsp.WorkspaceDiagnosticParams) -> Any:
    return await asyncio.to_thread(diagnostics.pull_workspace, ls, params)


# ---------------------------------------------------------------------- language features


def _position(ls: ConductorServer, analysis_text: str, position: lsp.Position) -> tuple[int, int]:
    return ls.lines(analysis_text).from_client(position)


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
@guarded
def on_hover(ls: ConductorServer, params: lsp.HoverParams) -> lsp.Hover | None:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None or analysis.doc.data is None:
        return None
    line, char = _position(ls, analysis.text, params.position)
    text = hover.hover_markdown(analysis, line, char, ls.store.project_root(analysis.path)
                                or ls.project_root_or_workspace())
    if not text:
        return None
    kind = lsp.MarkupKind.Markdown if ls.caps.hover_markdown else lsp.MarkupKind.PlainText
    found = analysis.doc.path_at(line, char)
    rng = None
    if found is not None:
        nodes = analysis.doc.nodes.get(found[0])
        if nodes is not None:
            target = nodes.key if found[1] and nodes.key else nodes.value
            rng = ls.lines(analysis.text).range(target)
    return lsp.Hover(contents=lsp.MarkupContent(kind=kind, value=text), range=rng)


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=[":", " ", "-", '"', "/"]))
@guarded
def on_completion(ls: ConductorServer, params: lsp.CompletionParams) -> lsp.CompletionList | None:
    uri = params.text_document.uri
    snapshot = ls.buffer(uri)
    if snapshot is None:
        return None
    path, text, _version = snapshot
    kind = detect_kind(path)
    if kind is None or len(text) > 2 * 1024 * 1024:
        return None
    lines = ls.lines(text)
    line, char = lines.from_client(params.position)
    root = ls.store.project_root(path) or ls.project_root_or_workspace()
    client = completion.Client(ls.caps.snippets, ls.caps.completion_markdown, ls.caps.insert_as_is)
    syntax = "json" if path.name.endswith(".json") else "yaml"
    items = completion.complete(kind, syntax, text, line, char, root, ls.files, client, lines.to_client)
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(
    code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.Source]))
@guarded
def on_code_action(ls: ConductorServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction] | None:
    uri = params.text_document.uri
    path = ls.path_of(uri)
    analysis = ls.analysis(uri)
    only = params.context.only
    out: list[lsp.CodeAction] = []
    if analysis is not None:
        lines = ls.lines(analysis.text)
        if not only or any(str(getattr(k, "value", k)).startswith("quickfix") for k in only):
            out.extend(code_actions.quick_fixes(analysis, lines, params.range,
                                                lambda d: diagnostics.to_lsp(d, lines)))
    if not only or any(str(getattr(k, "value", k)).startswith("source") for k in only):
        root = (ls.store.project_root(path) if path else None) or ls.project_root_or_workspace()
        line, char = ls.lines(analysis.text).from_client(params.range.start) if analysis else (0, 0)
        out.extend(code_actions.source_actions(analysis, path, root, line, char, ls.caps.create_files))
    return out


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@guarded
def on_document_symbol(ls: ConductorServer, params: lsp.DocumentSymbolParams) -> Any:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None:
        return None
    found = symbols.document_symbols(analysis, ls.lines(analysis.text))
    if ls.caps.hierarchical_symbols:
        return found
    return symbols.flatten(found, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_CODE_LENS, lsp.CodeLensOptions(resolve_provider=False))
@guarded
def on_code_lens(ls: ConductorServer, params: lsp.CodeLensParams) -> list[lsp.CodeLens] | None:
    analysis = ls.analysis(params.text_document.uri)
    if analysis is None or analysis.kind not in ("task", "plan"):
        return None
    return code_lens.lenses(analysis, ls.lines(analysis.text), ls.steps.for_document(analysis))


@server.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL)
def on_progress_cancel(ls: ConductorServer, params: lsp.WorkDoneProgressCancelParams) -> None:
    ls.jobs.cancel(token=str(params.token))


def _register_command(name: str) -> None:
    async def run(ls: ConductorServer, *args: Any) -> Any:
        try:
            return await commands.execute(ls, name, args)
        except JsonRpcException:
            raise
        except Exception as exc:
            ls.log_error(f"{name} failed: {type(exc).__name__}: {exc}")
            ls.show(f"{name} failed: {exc}", lsp.MessageType.Error)
            raise JsonRpcInternalError(f"{name} failed: {type(exc).__name__}: {exc}") from exc

    run.__name__ = name.replace(".", "_")
    server.command(name)(run)


for _name in commands.COMMANDS:
    _register_command(_name)


def run(tcp: str | None = None) -> None:
    # Everything imported so far lives as long as the server: keep it out of the collector's
    # way, and collect less often (validating a large document allocates many short-lived
    # objects; frequent full collections were the tail of edit → diagnostics latency).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)
    logging.basicConfig(level=os.environ.get("CONDUCTOR_LSP_LOG", "WARNING"), stream=sys.stderr,
                        format="conductor-lsp %(levelname)s %(name)s: %(message)s")
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not port.isdigit():
            raise JsonRpcInvalidParams(f"--tcp wants HOST:PORT, got {tcp!r}")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()
