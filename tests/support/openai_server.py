"""A real OpenAI-compatible HTTP server on loopback that answers from a script.

Why it exists: Conductor's LLM code must be tested through the real ``openai`` client over
real HTTP — retries, timeouts, status codes and headers included — without a network or
a key. This server speaks enough of the API for that:

* ``POST /v1/chat/completions`` → a ``chat.completion`` object with ``usage``;
* ``GET /v1/models`` → the model list.

Answers come from an ordered list of :class:`Rule` s. For each request the first rule that
matches and is not used up is consumed. A rule matches on a substring of the last user
message (``match``) and/or on the request's purpose (the ``X-Conductor-Purpose`` header
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
        }
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown rule keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        return cls(**spec)

    def available(self) -> bool:
        return self.times is None or self.used < self.times

    def matches(self, last_user: str, purpose: str | None) -> bool:
        if self.match is not None and self.match not in last_user:
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


def _last_user(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _purpose_of(headers: dict[str, str], body: Any) -> str | None:
    for name, value in headers.items():
        if name.lower() == PURPOSE_HEADER.lower():
            return value
    if isinstance(body, dict):
        for message in body.get("messages") or []:
            if isinstance(message, dict) and message.get("role") == "system":
                found = _PURPOSE_IN_PROMPT.search(str(message.get("content", "")))
                if found:
                    return found.group(1)
    return None


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
    def _take_rule(self, last_user: str, purpose: str | None) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.available() and rule.matches(last_user, purpose):
                    rule.used += 1
                    return rule
        return None

    def _next_id(self) -> str:
        with self._lock:
            self._completion_counter += 1
            return f"chatcmpl-scripted-{self._completion_counter}"

    def completion_body(self, rule: Rule, model: str) -> dict[str, Any]:
        return {
            "id": self._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": rule.content(), "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": rule.prompt_tokens,
                "completion_tokens": rule.completion_tokens,
                "total_tokens": rule.prompt_tokens + rule.completion_tokens,
            },
        }


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
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, _error_body(404, f"no route {self.path}"))
            return
        if not isinstance(request.body, dict) or "messages" not in request.body:
            self._send_json(400, _error_body(400, "body must be a JSON object with messages"))
            return
        rule = self.owner._take_rule(request.last_user_message, request.purpose)
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
