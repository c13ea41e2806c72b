"""The language server: thin handlers from LSP methods to the feature modules.

Each handler converts positions in, calls a plain function (validation, schema lookup,
engine API), converts the answer out. No business logic lives here. Validation and engine
calls run in worker threads: the event loop only routes messages, so a hover is answered
while a large policy is re-validated (from the last finished analysis of the document).

It also owns the server's life: it exits within :data:`EXIT_WITHIN` seconds of its client
going away (``exit``, end of input on stdin, or the ``initialize.processId`` process dying),
and first halts running builds through their cancel event so that each one journals
``plan.halted`` and ``conductor resume`` continues it. Logging is quiet: ``window/logMessage``
at Info carries one line per user-visible event; details and protocol chatter go to
``$/logTrace`` (shown when the client's trace is on) or to stderr at DEBUG.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async
from pygls.lsp.server import LanguageServer

from conductor import __version__
from conductor.contract.schemas import KINDS
from conductor.lsp import (
    code_actions,
    code_lens,
    commands,
    completion,
    diagnostics,
    hover,
    plan_view,
    symbols,
    watch,
)
from conductor.lsp.approvals import Approvals
from conductor.lsp.capabilities import Caps
from conductor.lsp.documents import Analysis, DocumentStore, read_disk
from conductor.lsp.positions import Lines
from conductor.lsp.settings import Settings
from conductor.lsp.steps import StepTracker
from conductor.project.layout import find_project_root
from conductor.validation import Diagnostic, detect_kind

log = logging.getLogger("conductor.lsp")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_WITHIN = 2.0
"""Seconds between the client going away and this process being gone."""
HALT_WAIT = 1.5
"""Of those, how long running builds get to journal their halt."""
PARENT_POLL = 0.4
"""How often the client process (``initialize.processId``) is checked."""
FIRST_DIAGNOSTICS_FIRST = 0.5
"""Start-up work the first diagnostics do not need (reading the plans, compiling the validators of
large documents, watching files) waits until they are published, or at most this many seconds."""
PROTOCOL_CHATTER = (
    "Cancel notification for unknown message id",
    "Cancelled request with id",
    "Ignoring notification for unknown method",
    "Content length:",
)
"""pygls messages about the protocol itself: DEBUG, never a warning in the user's log."""


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
        self.first_published = threading.Event()  # set by the scheduler (a worker thread may wait on it)
        self.shut_down = False
        self.leaving = False
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

    def buffer(self, uri: str) -> tuple[Path, str, int | None, Diagnostic | None] | None:
        """(path, text, version, why-unread) of ``uri``: the open buffer, else the file on disk
        (only a regular file is read; otherwise the diagnostic says why, with an empty text)."""
        path = self.path_of(uri)
        if path is None:
            return None
        if self.is_open(uri):
            doc = self.workspace.get_text_document(uri)
            return path, doc.source, doc.version, None
        text, unreadable = read_disk(path)
        if unreadable is not None:
            return path, "", None, unreadable
        return (path, text, None, None) if text is not None else None

    async def analysis(self, uri: str, stale_ok: bool = False) -> Analysis | None:
        """The analysis of ``uri``'s current text, validated in a worker thread when needed.

        With ``stale_ok`` (hovers) the last finished analysis is used while a newer version of
        a large document is being validated, so the answer never waits for a long validation.
        """
        path = self.path_of(uri)
        if path is None or detect_kind(path) is None:
            return None
        if self.is_open(uri):
            doc = self.workspace.get_text_document(uri)
            cached = self.store.cached(uri, doc.source, doc.version)
            if cached is not None:
                return cached
            previous = self.store.analyses.get(uri)
            if stale_ok and previous is not None and (uri in self.scheduler.running
                                                      or len(doc.source) > diagnostics.THREAD_ABOVE_BYTES):
                if uri not in self.scheduler.running:
                    self.scheduler.changed(uri)  # the fresh analysis is computed in the background
                return previous
        snapshot = await asyncio.to_thread(self.buffer, uri)
        if snapshot is None:
            return None
        path, text, version, unreadable = snapshot
        return await asyncio.to_thread(self.store.analyse, uri, path, text, version, None, unreadable)

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
        """One line for the user's log (``window/logMessage`` Info); longer text goes to the trace."""
        first = message.strip().splitlines()[0] if message.strip() else ""
        if len(first) > 200 or first != message.strip():
            self.trace_detail(message)
            first = first[:197] + "…" if len(first) > 200 else first + " …"
        with contextlib.suppress(Exception):
            self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Info, message=first))

    def trace_detail(self, message: str) -> None:
        """Detail for someone debugging: ``$/logTrace``, which the client shows only with its trace on."""
        log.debug("%s", message)
        try:
            tracing = self.protocol.trace not in (None, lsp.TraceValue.Off)
        except Exception:
            tracing = False
        if tracing:
            with contextlib.suppress(Exception):
                self.log_trace_notification(message)

    def log_trace_notification(self, message: str) -> None:
        self.protocol.notify("$/logTrace", lsp.LogTraceParams(message=message))

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
    threading.Thread(target=_warm_up, args=(ls.first_published,), name="conductor-warm-up", daemon=True).start()


def _warm_up(first_published: threading.Event) -> None:
    """Once the first diagnostics are out (or after :data:`FIRST_DIAGNOSTICS_FIRST`), load jsonschema
    and compile the validators of every kind, so later documents, large ones too, find them ready.
    The first document does not wait for this: a valid policy is checked by the validator shipped
    with the package, an invalid one loads what its messages need itself."""
    from conductor.validation import (
        schema_rules,  # lazy: jsonschema (~0.1 s) loads here, after `initialize` is answered
    )

    first_published.wait(FIRST_DIAGNOSTICS_FIRST)
    with contextlib.suppress(Exception):
        for kind in KINDS:
            schema_rules.warm_up(kind)


@server.feature(lsp.INITIALIZED)
@guarded
async def initialized(ls: ConductorServer, params: lsp.InitializedParams) -> None:
    await fetch_settings(ls)
    # a document opened with `initialized` gets its diagnostics before the plans are read (that
    # loads the engine API and replays every journal: CPU the first diagnostics would share)
    await asyncio.to_thread(ls.first_published.wait, FIRST_DIAGNOSTICS_FIRST)
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
    """Leave when the editor that started us is gone (it may die without sending exit).

    The client is gone when ``pid`` no longer exists or when we were re-parented (our parent
    died and init adopted us); either way running builds are halted and the process exits.
    """
    parent = os.getppid()
    while True:
        await asyncio.sleep(PARENT_POLL)
        gone = os.getppid() != parent
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            gone = True
        except PermissionError:
            pass
        if gone:
            await leave(ls, f"the client process {pid} is gone", 0)


def running_jobs(ls: ConductorServer) -> list[commands.Job]:
    return [job for job in ls.jobs.by_token.values() if job.task is not None and not job.task.done()]


def _stopped(job: commands.Job) -> bool:
    """A job's engine has returned: its task is done, or its own event loop has been closed."""
    if job.task is not None and job.task.done():
        return True
    loop = job.loop
    return loop is not None and loop.is_closed()


async def halt_jobs(ls: ConductorServer, why: str, wait: float = HALT_WAIT) -> list[str]:
    """Cancel every running build/resume and wait (at most ``wait`` s) until each has halted.

    A cancelled run journals ``plan.halted`` before it returns, so ``conductor resume``
    continues it. Returns the plan ids that were halted (or asked to halt).
    """
    jobs = running_jobs(ls)
    if not jobs:
        return []
    for job in jobs:
        job.cancel()
    plans = [job.plan_id or job.token for job in jobs]
    log.info("halting %s (%s)", ", ".join(plans), why)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline and not all(_stopped(job) for job in jobs):
        await asyncio.sleep(0.02)
    late = [job.plan_id or job.token for job in jobs if not _stopped(job)]
    if late:
        log.warning("%s did not halt within %.1f s; `conductor resume` will continue from the journal",
                    ", ".join(late), wait)
    return plans


async def leave(ls: ConductorServer, why: str, code: int) -> None:
    """Halt running jobs, then end the process at once.

    ``os._exit``: worker threads (an engine run, a folder walk) must not keep the process alive,
    and the interpreter's normal exit would wait for them.
    """
    if ls.leaving:
        return
    ls.leaving = True
    ls.stopping.set()
    with contextlib.suppress(Exception):
        await halt_jobs(ls, why)
    log.info("exiting: %s", why)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(code)


@server.feature(lsp.SHUTDOWN)
async def shutdown(ls: ConductorServer, params: Any) -> None:
    """Stop work: halt running builds (journaled, resumable) before answering."""
    ls.stopping.set()
    ls.shut_down = True
    ls.scheduler.cancel_all()
    await halt_jobs(ls, "the client asked the server to shut down")
    for task in list(ls.background):
        task.cancel()


@server.feature(lsp.EXIT)
async def on_exit(ls: ConductorServer, params: Any) -> None:
    """``exit``: 0 after ``shutdown``, 1 without (LSP), running jobs halted first."""
    await leave(ls, "exit notification", 0 if ls.shut_down else 1)


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
async def document_diagnostic(ls: ConductorServer, params: lsp.DocumentDiagnosticParams) -> Any:
    return await diagnostics.pull_document(ls, params)


@server.feature(lsp.WORKSPACE_DIAGNOSTIC)
@guarded
async def workspace_diagnostic(ls: ConductorServer, params: lsp.WorkspaceDiagnosticParams) -> Any:
    return await diagnostics.pull_workspace(ls, params)


# ---------------------------------------------------------------------- language features


def _position(ls: ConductorServer, analysis_text: str, position: lsp.Position) -> tuple[int, int]:
    return ls.lines(analysis_text).from_client(position)


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
@guarded
async def on_hover(ls: ConductorServer, params: lsp.HoverParams) -> lsp.Hover | None:
    analysis = await ls.analysis(params.text_document.uri, stale_ok=True)
    if analysis is None or analysis.doc.data is None:
        return None
    line, char = _position(ls, analysis.text, params.position)
    text = await hover.hover_markdown(analysis, line, char, ls.store.project_root(analysis.path)
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
async def on_completion(ls: ConductorServer, params: lsp.CompletionParams) -> lsp.CompletionList | None:
    uri = params.text_document.uri
    snapshot = await asyncio.to_thread(ls.buffer, uri)
    if snapshot is None:
        return None
    path, text, _version, _unreadable = snapshot
    kind = detect_kind(path)
    if kind is None or len(text) > 2 * 1024 * 1024:
        return None
    lines = ls.lines(text)
    line, char = lines.from_client(params.position)
    root = ls.store.project_root(path) or ls.project_root_or_workspace()
    client = completion.Client(ls.caps.snippets, ls.caps.completion_markdown, ls.caps.insert_as_is)
    syntax = "json" if path.name.endswith(".json") else "yaml"
    items = await asyncio.to_thread(completion.complete, kind, syntax, text, line, char, root, ls.files, client,
                                    lines.to_client)  # lists workspace files (git, or a bounded walk)
    return lsp.CompletionList(is_incomplete=False, items=items)


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(
    code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.Source]))
@guarded
async def on_code_action(ls: ConductorServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction] | None:
    uri = params.text_document.uri
    path = ls.path_of(uri)
    analysis = await ls.analysis(uri)
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
        out.extend(await asyncio.to_thread(code_actions.source_actions, analysis, path, root, line, char,
                                           ls.caps.create_files))  # reads the policy file
    return out


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@guarded
async def on_document_symbol(ls: ConductorServer, params: lsp.DocumentSymbolParams) -> Any:
    analysis = await ls.analysis(params.text_document.uri)
    if analysis is None:
        return None
    found = symbols.document_symbols(analysis, ls.lines(analysis.text))
    if ls.caps.hierarchical_symbols:
        return found
    return symbols.flatten(found, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_CODE_LENS, lsp.CodeLensOptions(resolve_provider=False))
@guarded
async def on_code_lens(ls: ConductorServer, params: lsp.CodeLensParams) -> list[lsp.CodeLens] | None:
    analysis = await ls.analysis(params.text_document.uri)
    if analysis is None or analysis.kind not in ("task", "plan"):
        return None
    return code_lens.lenses(analysis, ls.lines(analysis.text), ls.steps.for_document(analysis))


@server.feature(plan_view.PLANS_REQUEST)
@guarded
async def on_plans(ls: ConductorServer, params: Any) -> Any:
    """Plans → forks → steps with what each waits for (see ``plan_view``); the editor's tree."""
    return commands.jsonable(await asyncio.to_thread(plan_view.plans_view, ls))


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


class _QuietProtocol(logging.Filter):
    """Protocol chatter from pygls (a cancel for a request already answered, …) is DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("pygls") and record.levelno < logging.ERROR:
            text = str(record.msg)
            if any(text.startswith(prefix) for prefix in PROTOCOL_CHATTER):
                return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def configure_logging() -> None:
    """stderr (the client's output channel): WARNING by default, ``CONDUCTOR_LSP_LOG`` to change."""
    logging.basicConfig(level=os.environ.get("CONDUCTOR_LSP_LOG", "WARNING").upper(), stream=sys.stderr,
                        format="conductor-lsp %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietProtocol())


def serve_stdio() -> None:
    """pygls' stdio loop, plus what it lacks: at end of input, halt jobs and exit at once.

    (pygls returns from its loop and ``asyncio.run`` then waits for every worker thread,
    so a running build kept the process alive after its client had gone.)
    """
    stop_event = threading.Event()
    server._stop_event = stop_event
    reader = StdinAsyncReader(sys.stdin.buffer, server.thread_pool)
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))

    async def main() -> None:
        # An editor that gives up waiting for shutdown sends SIGTERM (Neovim after 500 ms);
        # a closed terminal sends SIGHUP: halt running builds first, as for `exit`.
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            task = asyncio.ensure_future(leave(server, f"signal {sig.name}", 0 if server.shut_down else 1))
            server.background.add(task)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal, sig)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await run_async(stop_event=stop_event, reader=reader, protocol=server.protocol, logger=log,
                            error_handler=server.report_server_error)
        code = 0 if server.shut_down else 1
        await leave(server, "end of input (the client closed the connection)", code)

    asyncio.run(main())


def run(tcp: str | None = None) -> None:
    # Everything imported so far lives as long as the server: keep it out of the collector's
    # way, and collect less often (validating a large document allocates many short-lived
    # objects; frequent full collections were the tail of edit → diagnostics latency).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)
    configure_logging()
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not port.isdigit():
            raise JsonRpcInvalidParams(f"--tcp wants HOST:PORT, got {tcp!r}")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        serve_stdio()
