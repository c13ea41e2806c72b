"""A real OpenAI-compatible HTTP server on loopback that answers from a script.

Why it exists: Conductor's LLM code must be tested through the real ``openai`` client over
real HTTP — retries, timeouts, status codes and headers included — without a network or
a key. This server speaks enough of the API for that:

* ``POST /v1/chat/completions`` → a ``chat.completion`` object with ``usage``, or with
  ``"stream": true`` the same answer as server-sent ``chat.completion.chunk`` events;
* ``POST /v1/responses`` → the Responses API (what Codex CLI speaks): a ``response`` object,
  or with ``"stream": true`` the SSE events ``response.created``,
  ``response.output_item.added``/``.done`` per output item and ``response.completed``;
* ``GET /v1/models`` → the model list.

Replies can be shaped as models really send them: ``finish_reason`` (``length`` for a
truncated reply), ``refusal`` (a refusal message), ``empty_choices`` (a ``choices: []``
answer). For the Responses API ``reply`` is a string (one assistant message) or a list of
output items (for example a ``function_call`` of ``exec_command``).

Answers come from an ordered list of :class:`Rule` s. For each request the first rule that
matches and is not used up is consumed. A rule matches on a substring of the last user
message (``match``; for the Responses API the last input item, a tool's output included),
on a substring of the system prompt (``system``), on the API (``api``: ``chat`` or
``responses``) and/or on the request's purpose (the ``X-Conductor-Purpose`` header
Conductor sends, or ``Conductor request purpose: <p>`` in the system prompt). It answers
with ``reply`` (a string, or any JSON value that is serialized as the message content), or
an HTTP ``status`` with an error body, after an optional ``delay`` (to force client
timeouts). A request no rule matches gets HTTP 400 ``no scripted rule matched``.

Every request is recorded (method, path, headers, JSON body, raw body) so tests can assert
what was sent — for example that the API key appears only as the Bearer header.

Run it standalone for manual or cross-language testing::

    python -m tests.support.openai_server --script script.json --port 8765

where ``script.json`` is ``{"rules": [{"purpose": "plan", "reply": {...}}, {"status": 429, "times": 1}]}``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PURPOSE_HEADER = "X-Conductor-Purpose"
_PURPOSE_IN_PROMPT = re.compile(r"Conductor request purpose: ([A-Za-z0-9_.-]+)")


@dataclass
class Rule:
    """One scripted answer. ``times=None`` means it never gets used up."""

    reply: Any = None
    status: int = 200
    match: str | None = None
    purpose: str | None = None
    delay: float = 0.0
    times: int | None = 1
    prompt_tokens: int = 11
    completion_tokens: int = 7
    error_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str = "stop"
    refusal: str | None = None
    empty_choices: bool = False
    system: str | None = None
    api: str | None = None
    used: int = 0

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Rule:
        allowed = {
            "reply",
            "status",
            "match",
            "purpose",
            "delay",
            "times",
            "prompt_tokens",
            "completion_tokens",
            "error_message",
            "headers",
            "finish_reason",
            "refusal",
            "empty_choices",
            "system",
            "api",
        }
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown rule keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        return cls(**spec)

    def available(self) -> bool:
        return self.times is None or self.used < self.times

    def matches(self, last_user: str, purpose: str | None, system: str = "", api: str = "chat") -> bool:
        if self.match is not None and self.match not in last_user:
            return False
        if self.system is not None and self.system not in system:
            return False
        if self.api is not None and self.api != api:
            return False
        return not (self.purpose is not None and self.purpose != purpose)

    def content(self) -> str:
        return self.reply if isinstance(self.reply, str) else json.dumps(self.reply)


@dataclass
class RecordedRequest:
    """A request exactly as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_body: str

    @property
    def purpose(self) -> str | None:
        return _purpose_of(self.headers, self.body)

    @property
    def last_user_message(self) -> str:
        return _last_user(self.body)

    @property
    def system_prompt(self) -> str:
        return _system_text(self.body)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "input_text", "text": …}, …]
        texts = [part.get("text") for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
        if texts:
            return "\n".join(texts)
    return json.dumps(content)


def _last_user(body: Any) -> str:
    """The last user message (chat), or the last input item (Responses: a tool output is one)."""
    if not isinstance(body, dict):
        return ""
    if "messages" in body:
        for message in reversed(body.get("messages") or []):
            if isinstance(message, dict) and message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""
    items = body.get("input")
    if isinstance(items, str):
        return items
    if isinstance(items, list) and items:
        last = items[-1]
        if isinstance(last, dict) and last.get("role") == "user":
            return _text_of(last.get("content"))
        return json.dumps(last)
    return ""


def _system_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("instructions") or "")]
    for message in body.get("messages") or body.get("input") or []:
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            parts.append(_text_of(message.get("content")))
    return "\n".join(p for p in parts if p)


def _purpose_of(headers: dict[str, str], body: Any) -> str | None:
    for name, value in headers.items():
        if name.lower() == PURPOSE_HEADER.lower():
            return value
    found = _PURPOSE_IN_PROMPT.search(_system_text(body))
    return found.group(1) if found else None


class ScriptedOpenAIServer:
    """Start with :meth:`start` (or as a context manager); ``base_url`` ends in ``/v1``."""

    def __init__(
        self,
        rules: list[Rule] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: tuple[str, ...] = ("scripted-model",),
    ) -> None:
        self.rules: list[Rule] = list(rules or [])
        self.requests: list[RecordedRequest] = []
        self.models = models
        self._lock = threading.Lock()
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._completion_counter = 0

    # -- scripting ---------------------------------------------------------------------
    def add(self, reply: Any = None, **kwargs: Any) -> Rule:
        """Append a rule (``reply``, ``status``, ``match``, ``purpose``, ``delay``, ``times`` …)."""
        rule = Rule(reply=reply, **kwargs)
        with self._lock:
            self.rules.append(rule)
        return rule

    def reset(self) -> None:
        with self._lock:
            self.rules.clear()
            self.requests.clear()

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def responses_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("/responses")]

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    def start(self) -> ScriptedOpenAIServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer((self._host, self._port), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering -----------------------------------------------------------------------
    def _take_rule(self, request: RecordedRequest, api: str) -> Rule | None:
        last_user, purpose, system = request.last_user_message, request.purpose, request.system_prompt
        with self._lock:
            for rule in self.rules:
                if rule.available() and rule.matches(last_user, purpose, system, api):
                    rule.used += 1
                    return rule
        return None

    def _next_id(self) -> str:
        with self._lock:
            self._completion_counter += 1
            return f"chatcmpl-scripted-{self._completion_counter}"

    def _usage(self, rule: Rule) -> dict[str, int]:
        return {
            "prompt_tokens": rule.prompt_tokens,
            "completion_tokens": rule.completion_tokens,
            "total_tokens": rule.prompt_tokens + rule.completion_tokens,
        }

    def completion_body(self, rule: Rule, model: str) -> dict[str, Any]:
        content = None if rule.refusal is not None else rule.content()
        choices = [] if rule.empty_choices else [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": rule.refusal},
                "finish_reason": rule.finish_reason,
                "logprobs": None,
            }
        ]
        return {
            "id": self._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": self._usage(rule),
        }

    def completion_chunks(self, rule: Rule, model: str) -> list[dict[str, Any]]:
        """The same answer as ``chat.completion.chunk`` events (content in a few pieces)."""
        ident, created = self._next_id(), int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None, usage: dict[str, int] | None = None) -> dict[str, Any]:
            body: dict[str, Any] = {"id": ident, "object": "chat.completion.chunk", "created": created,
                                    "model": model, "choices": [] if rule.empty_choices else
                                    [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
            if usage is not None:
                body["usage"] = usage
            return body

        if rule.refusal is not None:
            return [chunk({"role": "assistant", "refusal": rule.refusal}, rule.finish_reason, self._usage(rule))]
        text = rule.content()
        step = max(1, len(text) // 3)
        pieces = [text[i:i + step] for i in range(0, len(text), step)] or [""]
        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": piece}, None) for piece in pieces]
        events.append(chunk({}, rule.finish_reason, self._usage(rule)))
        return events

    def response_items(self, rule: Rule) -> list[dict[str, Any]]:
        """Responses API output items: the rule's list as given, or one assistant message."""
        if isinstance(rule.reply, list):
            items = []
            for index, item in enumerate(rule.reply):
                item = dict(item)
                item.setdefault("id", f"item_{self._completion_counter}_{index}")
                if item.get("type") == "function_call":
                    item.setdefault("status", "completed")
                    item.setdefault("call_id", f"call_{self._completion_counter}_{index}")
                items.append(item)
            return items
        return [{"type": "message", "id": f"msg_{self._completion_counter}", "status": "completed",
                 "role": "assistant", "content": [{"type": "output_text", "text": rule.content(), "annotations": []}]}]

    def response_body(self, rule: Rule, model: str, status: str = "completed") -> dict[str, Any]:
        ident = self._next_id().replace("chatcmpl", "resp")
        return {
            "id": ident, "object": "response", "created_at": int(time.time()), "status": status, "model": model,
            "output": self.response_items(rule) if status == "completed" else [],
            "usage": {"input_tokens": rule.prompt_tokens, "output_tokens": rule.completion_tokens,
                      "total_tokens": rule.prompt_tokens + rule.completion_tokens,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}},
            "error": None, "incomplete_details": None, "parallel_tool_calls": False, "tool_choice": "auto",
            "tools": [], "output_text": None,
        }

    def response_events(self, rule: Rule, model: str) -> list[dict[str, Any]]:
        """The Responses API stream: created, each output item added and done, completed."""
        final = self.response_body(rule, model)
        created = {**final, "status": "in_progress", "output": []}
        events: list[dict[str, Any]] = [{"type": "response.created", "response": created}]
        for index, item in enumerate(final["output"]):
            events.append({"type": "response.output_item.added", "output_index": index, "item": item})
            if item.get("type") == "message":
                for part_index, part in enumerate(item.get("content") or []):
                    events.append({"type": "response.output_text.delta", "item_id": item["id"],
                                   "output_index": index, "content_index": part_index,
                                   "delta": part.get("text", "")})
            events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        events.append({"type": "response.completed", "response": final})
        return events


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}.get(
        status, "server_error"
    )
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


class _Handler(BaseHTTPRequestHandler):
    owner: ScriptedOpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _record(self, raw: bytes) -> RecordedRequest:
        text = raw.decode("utf-8", errors="replace")
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = None
        request = RecordedRequest(self.command, self.path, dict(self.headers.items()), body, text)
        with self.owner._lock:
            self.owner.requests.append(request)
        return request

    def _send_events(self, events: list[dict[str, Any]], named: bool, done_marker: bool) -> None:
        """Server-sent events, one ``data:`` line each (``event:`` too for the Responses API)."""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for event in events:
                head = f"event: {event['type']}\n" if named else ""
                self.wfile.write(f"{head}data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            if done_marker:
                self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to answer

    def do_GET(self) -> None:
        self._record(b"")
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "scripted"} for m in self.owner.models
                    ],
                },
            )
        else:
            self._send_json(404, _error_body(404, f"no route {self.path}"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = self._record(self.rfile.read(length) if length else b"")
        path = self.path.rstrip("/")
        if path.endswith("/chat/completions"):
            api, needed = "chat", "messages"
        elif path.endswith("/responses"):
            api, needed = "responses", "input"
        else:
            self._send_json(404, _error_body(404, f"no route {self.path}"))
            return
        if not isinstance(request.body, dict) or needed not in request.body:
            self._send_json(400, _error_body(400, f"body must be a JSON object with {needed}"))
            return
        rule = self.owner._take_rule(request, api)
        if rule is None:
            self._send_json(400, _error_body(400, "no scripted rule matched this request"))
            return
        if rule.delay:
            time.sleep(rule.delay)
        if rule.status != 200:
            message = rule.error_message or f"scripted HTTP {rule.status}"
            self._send_json(rule.status, _error_body(rule.status, message), rule.headers)
            return
        model = str(request.body.get("model") or self.owner.models[0])
        stream = bool(request.body.get("stream"))
        if api == "responses":
            if stream:
                self._send_events(self.owner.response_events(rule, model), named=True, done_marker=False)
            else:
                self._send_json(200, self.owner.response_body(rule, model), rule.headers)
        elif stream:
            self._send_events(self.owner.completion_chunks(rule, model), named=False, done_marker=True)
        else:
            self._send_json(200, self.owner.completion_body(rule, model), rule.headers)


def load_script(path: str | Path) -> list[Rule]:
    """Rules from a JSON file ``{"rules": [...]}`` (or a bare list)."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    specs = document.get("rules", []) if isinstance(document, dict) else document
    if not isinstance(specs, list):
        raise ValueError(f"{path}: expected a list of rules under 'rules'")
    return [Rule.from_dict(spec) for spec in specs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible server on loopback.")
    parser.add_argument("--script", type=Path, help="JSON file with {'rules': [...]}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    rules = load_script(args.script) if args.script else []
    server = ScriptedOpenAIServer(rules, host=args.host, port=args.port).start()
    print(f"scripted OpenAI server listening on {server.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
