"""The Conductor MCP server (stdio) on the official ``mcp`` SDK's low-level ``Server``.

Why a module of its own: it is the thin adapter: tool calls are validated against the
tools' input schemas, translated to :mod:`conductor.engine.api` calls (the agent side of the
queue is ``api.next_task`` / ``api.submit_result`` / ``api.find_verdict``), and answered as
text (what the CLI prints) plus structured content (the same data as JSON). Refusals are
``isError`` results whose text says what and where; they change nothing.

The low-level ``Server`` (rather than ``MCPServer``) is used so each tool's input schema is
exactly the one derived from the published contract (:mod:`conductor.mcp.tools`).
Resources: ``conductor://policy`` (the effective project policy with origins) and
``conductor://plan/current`` (the status of the latest plan).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from conductor import __version__
from conductor.engine import api
from conductor.mcp.tools import DEFAULT_WAIT_SECONDS, tool_definitions

POLICY_URI = "conductor://policy"
PLAN_URI = "conductor://plan/current"
POLL_FAST = 0.01  # seconds between looks for the verdict during the first FAST_FOR seconds
FAST_FOR = 5.0
POLL_SLOW = 0.1
PROGRESS_EVERY = 5.0
RESOURCE_NOT_FOUND = -32002  # the MCP specification's code for an unknown resource URI

INSTRUCTIONS = (
    "Conductor plans work and hands each step to an agent; it verifies what really changed. Loop: call "
    "next_task (name yourself as executor), do the task inside its workspace touching only allowed_files, then "
    "call submit_result and read the verdict; repair and take the next task. Never edit Conductor's task files."
)


class ToolError(Exception):
    """A refused tool call; its message becomes the ``isError`` result's text."""


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _answer(text: str, data: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"{text}\n\n{_json(data)}")],
                                structured_content=data)


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _schema_problem(tool: str, schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(arguments), key=lambda e: list(e.path))
    if not errors:
        return None
    parts = []
    for err in errors[:5]:
        where = "/".join(str(p) for p in err.absolute_path)
        parts.append(f"argument `{where}`: {err.message}" if where else err.message)
    return f"{tool}: the arguments do not match its input schema: " + "; ".join(parts)


class ConductorMCP:
    """The tools and resources of one server process, over one project."""

    def __init__(self, root: Path | None = None, *, allow_approve: bool = False,
                 wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        self._root = root
        self.allow_approve = allow_approve
        self.wait_seconds = wait_seconds
        self.tools = {t["name"]: t for t in tool_definitions(allow_approve)}
        self._submit_lock = anyio.Lock()
        self._handlers: dict[str, Callable[..., Any]] = {
            "next_task": self.next_task, "submit_result": self.submit_result, "status": self.status,
            "explain": self.explain, "approve": self.approve,
        }

    # project ---------------------------------------------------------------------------

    def root(self) -> Path:
        where = self._root or Path.cwd()
        root = api.find_project_root(where)
        if root is None:
            raise ToolError(f"{Path(where).resolve()}: not inside a Conductor project (no .conductor folder); run "
                            "`conductor init` there, or start the server with `conductor mcp --root <project>`")
        return root

    # SDK handlers ----------------------------------------------------------------------

    def build(self) -> Server[Any]:
        return Server(
            "conductor", version=__version__, title="Conductor handoff queue", instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools, on_call_tool=self._call_tool,
            on_list_resources=self._list_resources, on_read_resource=self._read_resource,
        )

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in self.tools.values()])

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = self.tools.get(params.name)
        if tool is None:
            return _error(f"unknown tool {params.name!r}; this server offers: {', '.join(self.tools)}")
        arguments = dict(params.arguments or {})
        problem = _schema_problem(params.name, tool["inputSchema"], arguments)
        if problem:
            return _error(problem)
        try:
            result: types.CallToolResult = await self._handlers[params.name](arguments, ctx)
            return result
        except (ToolError, api.EngineError) as exc:
            return _error(f"{params.name}: {exc}")
        except Exception as exc:  # a bug: say so, stay up
            return _error(f"{params.name}: {type(exc).__name__}: {exc}")

    async def _list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[
            types.Resource(uri=POLICY_URI, name="policy", title="Effective policy", mime_type="application/json",
                           description="The project's effective policy (constraints, protected patterns, limits, "
                           "verification commands), each value with the file and line it comes from."),
            types.Resource(uri=PLAN_URI, name="current-plan", title="Current plan", mime_type="application/json",
                           description="The latest plan as `conductor status --json` shows it: forks, steps, "
                           "states, confidence, verdicts."),
        ])

    async def _read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            root = self.root()
            if uri == POLICY_URI:
                data: Any = await anyio.to_thread.run_sync(
                    lambda: api.effective_policy(root).to_json(show_origin=True))
            elif uri == PLAN_URI:
                def latest() -> Any:
                    ids = api.plan_ids(root)
                    if not ids:
                        return {"plans": [], "message": 'no plans yet; start one with `conductor build "<goal>"`'}
                    return api.status(root, ids[-1]).to_json()
                data = await anyio.to_thread.run_sync(latest)
            else:
                raise MCPError(RESOURCE_NOT_FOUND, f"unknown resource {uri!r}; this server offers {POLICY_URI} "
                               f"and {PLAN_URI}", {"uri": uri})
        except MCPError:
            raise
        except (ToolError, api.EngineError) as exc:  # not in a project, an invalid policy …: say so
            data = {"error": str(exc), "code": getattr(exc, "code", "project/not-found")}
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri=uri, mime_type="application/json", text=_json(data))])

    # tools -----------------------------------------------------------------------------

    async def next_task(self, args: dict[str, Any], ctx: Any) -> types.CallToolResult:
        root = self.root()
        wait = float(args.get("wait_seconds") or 0)
        deadline = time.monotonic() + wait
        while True:
            claimed = await anyio.to_thread.run_sync(
                lambda: api.next_task(root, args["executor"], args.get("plan_id"), args.get("fork_id")))
            if claimed is not None:
                break
            if time.monotonic() >= deadline:
                counts = await anyio.to_thread.run_sync(
                    lambda: api.queue_counts(root, args.get("plan_id"), args.get("fork_id")))
                scope = " ".join(f"{k} {args[k]}" for k in ("plan_id", "fork_id") if args.get(k))
                data: dict[str, Any] = {"claimed": False, "queue": counts,
                        "message": f"no task ready{' for ' + scope if scope else ''}: nothing is pending "
                        f"({counts['in_progress']} in progress, {counts['completed']} completed, "
                        f"{counts['failed']} failed). Call next_task again later (wait_seconds waits), or "
                        "check status."}
                return _answer(data["message"], data)
            await anyio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        task = claimed.to_json()
        data = {"claimed": True, **task}
        text = (f"Claimed {task['task_id']} (plan {task['plan_id']}, fork {task['fork_id']}, kind {task['kind']}). "
                f"Work in {task['workspace']} on {', '.join(task['allowed_files']) or 'no files'} only; then call "
                f"submit_result before {task['deadline']}.")
        return _answer(text, data)

    async def submit_result(self, args: dict[str, Any], ctx: Any) -> types.CallToolResult:
        root = self.root()
        async with self._submit_lock:  # serialize checks+writes of this process (the link also guards others)
            sub = await anyio.to_thread.run_sync(lambda: api.submit_result(root, args))
        wait = float(args["wait_seconds"]) if args.get("wait_seconds") is not None else self.wait_seconds
        found = await self._wait_verdict(root, sub, wait, ctx)
        data: dict[str, Any]
        if found is None:
            data = {"task_id": sub.ref.task_id, "plan_id": sub.ref.plan_id, "fork_id": sub.ref.fork_id,
                    "verdict": None, "state": "submitted",
                    "message": f"the result was written to in_progress/ but Conductor gave no verdict within "
                    f"{wait:g}s (is `conductor build`/`resume` or the language server running?); read it "
                    f"later with explain {sub.ref.task_id}"}
            return _answer(data["message"], data)
        data = found.to_json()
        if data["verdict"] == "pass":
            text = f"PASS: {sub.ref.task_id} verified ({data['reason'] or 'all checks passed'})."
        else:
            lines = [f"FAIL: {sub.ref.task_id} refused: {data['reason']}"]
            lines += [f"- {v.get('code')}: {v.get('message')}" + (f" ({v['path']})" if v.get("path") else "")
                      for v in data["violations"]]
            text = "\n".join(lines)
        return _answer(text, data)

    async def _wait_verdict(self, root: Path, sub: Any, wait: float, ctx: Any) -> api.Verdict | None:
        token = _progress_token(ctx)
        start = time.monotonic()
        last_progress = start
        while True:
            found = await anyio.to_thread.run_sync(lambda: api.find_verdict(root, sub))
            if found is not None:
                return found
            now = time.monotonic()
            if now - start >= wait:
                return None
            if token is not None and now - last_progress >= PROGRESS_EVERY:
                last_progress = now
                with contextlib.suppress(Exception):
                    await ctx.session.send_progress_notification(
                        token, now - start, wait, f"waiting for Conductor to verify {sub.ref.task_id}",
                        related_request_id=ctx.request_id)
            await anyio.sleep(POLL_FAST if now - start < FAST_FOR else POLL_SLOW)

    async def status(self, args: dict[str, Any], ctx: Any) -> types.CallToolResult:
        root = self.root()

        def run() -> tuple[api.StatusView, dict[str, int]]:
            view = api.status(root, args.get("plan_id"))
            return view, api.queue_counts(root, view.plans[0].plan_id if args.get("plan_id") and view.plans else None)

        view, q = await anyio.to_thread.run_sync(run)
        data = {**view.to_json(), "queue": q}
        text = api.status_text(view) + (f"\n\nqueue: {q['pending']} pending, {q['in_progress']} in progress, "
                                    f"{q['completed']} completed, {q['failed']} failed")
        return _answer(text, data)

    async def explain(self, args: dict[str, Any], ctx: Any) -> types.CallToolResult:
        root = self.root()
        explained = await anyio.to_thread.run_sync(
            lambda: api.explain_step(root, args["step_id"], args.get("plan_id"), args.get("fork_id")))
        return _answer(explained.markdown, explained.to_json())

    async def approve(self, args: dict[str, Any], ctx: Any) -> types.CallToolResult:
        root = self.root()
        by = args.get("by") or f"{os.environ.get('USER') or 'user'} (via MCP)"
        approval = await anyio.to_thread.run_sync(
            lambda: api.approve_step(root, args["step_id"], args.get("plan_id"), args.get("fork_id"),
                                     args.get("decision", "approve"), by))
        return _answer(f"{approval.decision}d {approval.step_id} of plan {approval.plan_id} "
                       f"({', '.join(approval.forks)})", approval.to_json())


def _progress_token(ctx: Any) -> str | int | None:
    meta = getattr(ctx, "meta", None)
    if not meta:
        return None
    token = meta.get("progress_token", meta.get("progressToken")) if isinstance(meta, dict) else None
    return token if isinstance(token, str | int) else None


async def serve_stdio(app: ConductorMCP) -> None:
    server = app.build()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def run(root: Path | None = None, *, allow_approve: bool = False, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
    """Serve over stdio until the client closes the connection."""
    app = ConductorMCP(root, allow_approve=allow_approve, wait_seconds=wait_seconds)
    anyio.run(serve_stdio, app)
