"""``workspace/executeCommand``: the CLI's commands, over the same engine API.

Every command takes ONE object argument (or none) and calls ``conductor.engine.api``
directly, in a worker thread (nothing that walks folders or runs the engine blocks the
server's loop); ``$/cancelRequest`` stops a walk between files. Long ones (explore, build,
resume) run as jobs in a worker thread with their own event loop, return at once with their
plan id (minted by ``api.new_plan_id``) and progress token, report work-done progress and stop
cleanly on cancel. Results are structured JSON (the API's views), echoed as
``window/logMessage`` (and a one-line ``window/showMessage``). An engine refusal
(``api.EngineError``) is an error response with its code and message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from conductor.project.layout import CONDUCTOR_DIR

if TYPE_CHECKING:
    from conductor.engine import api
    from conductor.lsp.server import ConductorServer
else:  # the engine API loads on first use (see conductor.lsp.lazy_api)
    from conductor.lsp.lazy_api import api

COMMANDS = (
    "conductor.init", "conductor.explore", "conductor.build", "conductor.status", "conductor.policy",
    "conductor.explain", "conductor.events", "conductor.resume", "conductor.approve", "conductor.handoffMetrics",
    "conductor.verify", "conductor.validate", "conductor.openResult", "conductor.cancel",
)

# command → (required keys, optional keys) of its one object argument
SHAPES: dict[str, tuple[dict[str, type | tuple[type, ...]], dict[str, type | tuple[type, ...]]]] = {
    "conductor.init": ({}, {"path": str}),
    "conductor.explore": ({"goal": str}, {"forks": int}),
    "conductor.build": ({"goal": str}, {}),
    "conductor.status": ({}, {"plan_id": str}),
    "conductor.policy": ({}, {"plan_id": str, "fork_id": str, "step_id": str}),
    "conductor.explain": ({"step_id": str}, {"plan_id": str, "fork_id": str}),
    "conductor.events": ({}, {"plan_id": str, "type": str, "step_id": str}),
    "conductor.resume": ({}, {"plan_id": str}),
    "conductor.approve": ({"step_id": str, "decision": str}, {"plan_id": str, "fork_id": str}),
    "conductor.handoffMetrics": ({}, {}),
    "conductor.verify": ({}, {}),
    "conductor.validate": ({}, {"paths": list}),
    "conductor.openResult": ({"path": str}, {}),
    "conductor.cancel": ({}, {"plan_id": str, "token": str}),
}


def invalid(message: str) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(message)


def parse_args(command: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """The one object argument of ``command``, checked against its shape (InvalidParams otherwise)."""
    if len(args) > 1:
        raise invalid(f"{command} takes one object argument, got {len(args)} arguments")
    arg = args[0] if args else {}
    if arg is None:
        arg = {}
    if not isinstance(arg, dict):
        raise invalid(f"{command} takes one object argument, got {type(arg).__name__}")
    required, optional = SHAPES[command]
    for key in required:
        if key not in arg:
            raise invalid(f"{command}: missing `{key}`")
    for key, value in arg.items():
        expected = required.get(key) or optional.get(key)
        if expected is None:
            raise invalid(f"{command}: unknown argument `{key}` (takes {', '.join([*required, *optional]) or 'none'})")
        if value is not None and (not isinstance(value, expected) or (isinstance(value, bool) and expected is int)):
            raise invalid(f"{command}: `{key}` must be {getattr(expected, '__name__', expected)}")
    if command == "conductor.approve" and arg["decision"] not in ("approve", "reject"):
        raise invalid("conductor.approve: `decision` must be \"approve\" or \"reject\"")
    if command == "conductor.validate" and not all(isinstance(p, str) for p in arg.get("paths") or []):
        raise invalid("conductor.validate: `paths` must be a list of strings")
    if command in ("conductor.explore", "conductor.build") and not arg["goal"].strip():
        raise invalid(f"{command}: `goal` must not be empty")
    return arg


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "to_json"):  # the API's views and reports say how they are shown (as the CLI's --json)
        return value.to_json()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


REQUEST_FAILED = -32803  # LSP: the request was well formed but the server could not do it


def refused(exc: api.EngineError) -> JsonRpcException:
    """An engine refusal as the error response the client receives (code, message, the engine's code)."""
    code = JsonRpcInvalidParams.CODE if isinstance(exc, api.InvalidRequest | api.NotFound) else REQUEST_FAILED
    return JsonRpcException(str(exc), code=code, data={"code": exc.code})


async def off_loop(fn: Callable[..., Any], *args: Any, cancellable: bool = False, **kwargs: Any) -> Any:
    """``fn`` in a worker thread; a cancelled request (``$/cancelRequest``) sets its ``cancel`` event."""
    cancel = threading.Event()
    if cancellable:
        kwargs["cancel"] = cancel
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except asyncio.CancelledError:
        cancel.set()
        raise


# ---------------------------------------------------------------- direct commands


async def validate(ls: ConductorServer, root: Path, args: dict[str, Any]) -> dict[str, Any]:
    """Same checks as ``conductor validate`` (``api.validate_paths``), in a worker thread, cancellable."""
    conductor = root / CONDUCTOR_DIR
    default = conductor if conductor.is_dir() else root  # like `conductor validate`
    raw = [Path(p) if Path(p).is_absolute() else root / p for p in args.get("paths") or []] or [default]
    reports = await off_loop(api.validate_paths, raw, cancellable=True)
    files = []
    for report in reports:
        rel = _rel(report.path, root)
        files.append({**report.to_json(), "path": rel, "lines": [d.format(rel) for d in report.diagnostics]})
    errors = sum(r.errors for r in reports)
    warnings = sum(r.warnings for r in reports)
    result = {"ok": errors == 0, "errors": errors, "warnings": warnings, "files": files}
    ls.show(f"conductor validate: {errors} error(s), {warnings} warning(s) in {len(files)} file(s)",
            lsp.MessageType.Info if errors == 0 else lsp.MessageType.Warning)
    return result


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


async def policy(ls: ConductorServer, root: Path, args: dict[str, Any]) -> dict[str, Any]:
    """The effective policy with the origin of every value (same as ``conductor policy``)."""
    try:
        effective = await asyncio.to_thread(api.effective_policy, root, plan_id=args.get("plan_id"),
                                            step_id=args.get("step_id"), fork_id=args.get("fork_id"))
    except api.PolicyInvalid as exc:
        return {"ok": False, "error": str(exc), "diagnostics": [d.to_json() for d in exc.diagnostics]}
    return {"ok": True, "policy": effective.to_json(show_origin=True)}


# ---------------------------------------------------------------- jobs


@dataclass
class Job:
    kind: str
    token: str
    plan_id: str | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop | None = None
    cancel_event: Any = None
    task: asyncio.Future[Any] | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    result: Any = None

    def cancel(self) -> None:
        self.cancel_requested.set()
        if isinstance(self.cancel_event, threading.Event):
            self.cancel_event.set()
        elif self.loop is not None and self.cancel_event is not None:
            self.loop.call_soon_threadsafe(self.cancel_event.set)


class Jobs:
    """Long-running engine calls (run_goal, resume) in a worker thread with its own event loop."""

    def __init__(self, ls: ConductorServer) -> None:
        self.ls = ls
        self.by_token: dict[str, Job] = {}

    def cancel(self, token: str | None = None, plan_id: str | None = None) -> list[str]:
        cancelled = []
        for job in self.by_token.values():
            matches = (token and job.token == token) or (plan_id and job.plan_id == plan_id) or not (token or plan_id)
            if matches and job.task is not None and not job.task.done():
                job.cancel()
                cancelled.append(job.token)
        return cancelled

    async def start(self, kind: str, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                    title: str, plan_id: str) -> dict[str, Any]:
        """Run ``call`` (``api.run_goal`` or ``api.resume``) as a job; answer at once with its plan id."""
        ls = self.ls
        job = Job(kind, f"conductor-{kind}-{uuid.uuid4().hex[:12]}", plan_id)
        self.by_token[job.token] = job
        progress_ok = ls.caps.work_done_progress
        if progress_ok:
            try:
                await asyncio.wait_for(ls.work_done_progress.create_async(job.token), 5)
            except Exception:
                progress_ok = False
        if progress_ok:
            ls.work_done_progress.begin(job.token, lsp.WorkDoneProgressBegin(
                title=title, cancellable=True, message="starting", percentage=0))
        main_loop = asyncio.get_running_loop()
        percent = {"value": 0}

        def on_main(fn_: Callable[[], None]) -> None:
            def safe() -> None:
                try:
                    fn_()
                except Exception as exc:  # a callback must never break the run
                    ls.log_error(f"{kind}: {exc!r}")
            main_loop.call_soon_threadsafe(safe)

        def on_progress(message: Any = None, fraction: Any = None) -> None:
            def deliver() -> None:
                if isinstance(fraction, int | float) and not isinstance(fraction, bool):
                    value = fraction * 100 if fraction <= 1 else fraction
                    percent["value"] = max(percent["value"], min(100, int(value)))
                if progress_ok and not job.cancel_requested.is_set():
                    ls.work_done_progress.report(job.token, lsp.WorkDoneProgressReport(
                        message=str(message) if message is not None else None, percentage=percent["value"],
                        cancellable=True))
                if message:
                    ls.log_info(f"[{kind} {job.plan_id or ''}] {message}")
            on_main(deliver)

        def on_step(payload: Any) -> None:
            on_main(lambda: ls.steps.engine_step(payload))

        def on_approval(fork_id: str, step_id: str, confidence: Any) -> None:
            on_main(lambda: ls.approvals.ask_engine(job.plan_id or "", fork_id, step_id, confidence))

        kwargs = {**kwargs, "on_progress": on_progress, "on_step": on_step, "on_approval": on_approval}

        def worker() -> Any:
            async def run() -> Any:
                job.loop = asyncio.get_running_loop()
                job.cancel_event = asyncio.Event()
                if job.cancel_requested.is_set():
                    job.cancel_event.set()
                return await call(*args, cancel=job.cancel_event, **kwargs)

            return asyncio.run(run())

        async def supervise() -> Any:
            outcome: dict[str, Any]
            try:
                result = await asyncio.to_thread(worker)
                outcome = {"ok": True, "result": jsonable(result)}
            except (asyncio.CancelledError, KeyboardInterrupt):
                outcome = {"ok": False, "cancelled": True}
            except api.EngineError as exc:
                outcome = {"ok": False, "error": str(exc), "code": exc.code}
            except Exception as exc:
                outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            if job.cancel_requested.is_set():
                outcome["cancelled"] = True
            job.result = outcome
            summary = ("cancelled" if outcome.get("cancelled") else "finished" if outcome["ok"]
                       else f"failed: {outcome.get('error')}")
            if progress_ok:
                ls.work_done_progress.end(job.token, lsp.WorkDoneProgressEnd(message=summary))
            ls.show(" ".join(p for p in ("Conductor", kind, job.plan_id or "", summary) if p),
                    lsp.MessageType.Info if outcome["ok"] or outcome.get("cancelled") else lsp.MessageType.Error)
            done = outcome.get("result")
            result_outcome = done.get("outcome") if isinstance(done, dict) else None
            ls.log_info(" ".join(p for p in ("Conductor", kind, job.plan_id or "", summary) if p)
                        + (f" (outcome: {result_outcome})" if result_outcome else ""))
            ls.trace_detail(json.dumps({"command": f"conductor.{kind}", "plan_id": job.plan_id, **outcome},
                                       default=str))
            ls.steps.refresh()
            return outcome

        job.task = asyncio.ensure_future(supervise())
        ls.background.add(job.task)
        job.task.add_done_callback(ls.background.discard)
        return {"plan_id": job.plan_id, "token": job.token, "status": "running"}


# ---------------------------------------------------------------- dispatch


async def execute(ls: ConductorServer, command: str, raw: tuple[Any, ...]) -> Any:
    args = parse_args(command, raw)
    root = ls.project_root_or_workspace()
    if root is None and command != "conductor.init":
        raise invalid(f"{command} needs a workspace folder (no rootUri / workspace folders were given)")
    handler = HANDLERS[command]
    try:
        result = handler(ls, root, args)
        if inspect.isawaitable(result):
            result = await result
    except api.EngineError as exc:
        ls.log_error(f"{command} refused ({exc.code}): {exc}")
        raise refused(exc) from exc
    result = jsonable(result)
    ls.trace_detail(f"{command}: {json.dumps(result, ensure_ascii=False)[:4000]}")
    return result


def _view(name: str, *keys: str) -> Callable[[ConductorServer, Path, dict[str, Any]], Any]:
    """A command answered by ``api.<name>(root, **keys)`` (looked up when run: the API loads on first use)."""
    async def run(ls: ConductorServer, root: Path, args: dict[str, Any]) -> Any:
        kwargs = {k: args[k] for k in keys if args.get(k) is not None}
        return await asyncio.to_thread(getattr(api, name), root, **kwargs)
    return run


async def _events(ls: ConductorServer, root: Path, args: dict[str, Any]) -> Any:
    return await asyncio.to_thread(api.list_events, root, args.get("plan_id"),
                                   types=[args["type"]] if args.get("type") else None, step_id=args.get("step_id"))


async def _init(ls: ConductorServer, root: Path | None, args: dict[str, Any]) -> Any:
    target = Path(args["path"]) if args.get("path") else root
    if target is None:
        raise invalid("conductor.init: give `path` (no workspace folder is open)")
    if not target.is_absolute() and root is not None:
        target = root / target
    result = await asyncio.to_thread(api.init_project, target)
    ls.store.roots.clear()
    ls.show(f"Conductor initialised {target}")
    return result


async def _explain(ls: ConductorServer, root: Path, args: dict[str, Any]) -> Any:
    result = await asyncio.to_thread(api.explain_step, root, args["step_id"], args.get("plan_id"),
                                     args.get("fork_id"))
    # The full explanation goes to the trace; a toast carries one line (clients render the JSON).
    ls.trace_detail(result.markdown)
    first = next((line.lstrip("# ") for line in result.markdown.splitlines() if line.strip()), "")
    ls.show(f"Explained {args['step_id']}: {first[:160]}")
    return result


async def _approve(ls: ConductorServer, root: Path, args: dict[str, Any]) -> Any:
    result = await asyncio.to_thread(api.approve_step, root, args["step_id"], args.get("plan_id"),
                                     args.get("fork_id"), args["decision"])
    verb = "approved" if args["decision"] == "approve" else "rejected"
    ls.show(f"{args['step_id']} {verb}")
    ls.steps.refresh()
    return result


async def _run(kind: str, ls: ConductorServer, root: Path, args: dict[str, Any]) -> Any:
    root = await asyncio.to_thread(api.project_root, root)  # refused at once outside a project
    opts: dict[str, Any] = {"model": ls.settings.model, "base_url": ls.settings.base_url}
    if kind == "resume":
        plan_id = await asyncio.to_thread(api.resolve_plan, root, args.get("plan_id"))
        return await ls.jobs.start("resume", api.resume, (root, plan_id), opts, f"Conductor resume {plan_id}",
                                   plan_id)
    forks = 1 if kind == "build" else int(args.get("forks") or ls.settings.forks or 3)
    if ls.settings.mode:
        opts["mode"] = ls.settings.mode  # executor mode: handoff | llm (None: the project's config)
    plan_id = api.new_plan_id()
    return await ls.jobs.start(kind, api.run_goal, (root, args["goal"]), {"forks": forks, "plan_id": plan_id, **opts},
                               f"Conductor {kind}: {args['goal']}", plan_id)


async def _open_result(ls: ConductorServer, root: Path, args: dict[str, Any]) -> Any:
    path = Path(args["path"])
    if not path.exists():
        raise invalid(f"conductor.openResult: {path} does not exist")
    if ls.caps.show_document:
        await ls.window_show_document_async(lsp.ShowDocumentParams(uri=path.as_uri(), take_focus=True))
    return {"path": str(path), "uri": path.as_uri()}


def _cancel(ls: ConductorServer, root: Path, args: dict[str, Any]) -> Any:
    return {"cancelled": ls.jobs.cancel(args.get("token"), args.get("plan_id"))}


HANDLERS: dict[str, Callable[[Any, Any, dict[str, Any]], Any]] = {
    "conductor.init": _init,
    "conductor.explore": lambda ls, root, args: _run("explore", ls, root, args),
    "conductor.build": lambda ls, root, args: _run("build", ls, root, args),
    "conductor.resume": lambda ls, root, args: _run("resume", ls, root, args),
    "conductor.status": _view("status", "plan_id"),
    "conductor.policy": policy,
    "conductor.explain": _explain,
    "conductor.events": _events,
    "conductor.approve": _approve,
    "conductor.handoffMetrics": lambda ls, root, args: asyncio.to_thread(api.handoff_metrics, root),
    "conductor.verify": lambda ls, root, args: asyncio.to_thread(api.verify_project, root),
    "conductor.validate": validate,
    "conductor.openResult": _open_result,
    "conductor.cancel": _cancel,
}
