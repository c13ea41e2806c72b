"""The one place Conductor calls a language model: structured JSON answers, checked and retried.

Why it exists: planning, strategies, edits and repairs all need a JSON document of a known
shape from a model that sometimes answers with prose, invalid JSON, the wrong shape, a 429
or a 500, or nothing at all. :meth:`LLMClient.complete_json` hides that behind one call:

* it asks for JSON (``response_format = json_object``) and puts the JSON Schema in the system
  prompt;
* it validates the answer with :mod:`jsonschema`; an invalid answer is fed back to the model
  with the validation error and asked again;
* it retries timeouts, connection errors, 429 and 5xx with exponential backoff
  (``base_delay · 2^(n-1)``, capped, honouring a small ``Retry-After``);
* after ``1 + max_retries`` attempts it raises :class:`LLMError` with a clear message.

The API key comes only from the environment (the variable named by
``LLMSettings.api_key_env``, then ``CONDUCTOR_API_KEY``). It is sent as the Bearer header by
the ``openai`` client and nowhere else: every error message and every recorded reply is
scrubbed of it defensively, because some endpoints echo the key back in their errors.

Every successful call is handed to an optional *recorder* as an :class:`LLMRecord` (purpose,
request digest, model, raw response text, usage); the engine journals it as an ``llm.call``
event and :class:`conductor.llm.replay.ReplayLLM` answers from those records offline.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, cast, runtime_checkable

import openai
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field

from conductor.contract.checksum import canonical_json, sha256_hex
from conductor.contract.config import LLMSettings

ENV_API_KEY_FALLBACK = "CONDUCTOR_API_KEY"
ENV_BASE_URL = "CONDUCTOR_LLM_BASE_URL"
ENV_MODEL = "CONDUCTOR_LLM_MODEL"
PURPOSE_HEADER = "X-Conductor-Purpose"
DEFAULT_BASE_DELAY_SECONDS = 1.0
DEFAULT_MAX_DELAY_SECONDS = 30.0
REDACTED = "[REDACTED]"
_MIN_SECRET_LENGTH = 4
_MAX_ERRORS_FED_BACK = 5

Message = Mapping[str, str]


class LLMError(RuntimeError):
    """A model call that could not produce a valid answer. The message never contains the key.

    ``usage`` holds the tokens the failed attempts still cost (so the caller can journal them)
    and ``attempts`` how many requests were sent.
    """

    def __init__(self, message: str, *, usage: Usage | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.usage = usage if usage is not None else Usage()
        self.attempts = attempts


class LLMUnavailable(LLMError):
    """The endpoint, not the model's answer, failed: unreachable, timing out, or 429/5xx on every attempt.

    An infrastructure fault: the step did nothing wrong, so the caller should halt the plan
    resumably (``conductor resume`` once the endpoint is back) rather than fail or repair it.
    """


class Usage(BaseModel):
    """Tokens spent, as reported by the endpoint (summed over attempts)."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class LLMReply(BaseModel):
    """A validated JSON answer and what it cost."""

    model_config = ConfigDict(extra="forbid")

    data: Any = Field(description="The parsed JSON document; it validates against the requested schema.")
    raw_text: str = Field(description="The model's text exactly as received (scrubbed of secrets).")
    usage: Usage = Field(default_factory=Usage, description="Tokens over all attempts.")
    attempts: int = Field(ge=1, description="Requests sent, the successful one included.")
    purpose: str = ""
    model: str = ""
    request_digest: str = ""


class LLMRecord(BaseModel):
    """What a recorder receives for each successful call; the payload of an ``llm.call`` event."""

    model_config = ConfigDict(extra="forbid")

    purpose: str
    request_digest: str
    model: str
    response_text: str
    usage: Usage
    attempts: int = 1

    def event_data(self) -> dict[str, Any]:
        """The ``llm.call`` journal payload."""
        return self.model_dump(mode="json")


Recorder = Callable[[LLMRecord], None]


@runtime_checkable
class StructuredLLM(Protocol):
    """Anything that answers structured requests: the live client or a replay of recordings."""

    @property
    def model(self) -> str: ...

    def is_configured(self) -> bool: ...

    def complete_json(self, messages: Sequence[Message], schema: dict[str, Any], purpose: str) -> LLMReply: ...


def request_digest(messages: Sequence[Message], model: str) -> str:
    """SHA-256 over the canonical JSON of the request (model + messages as first sent)."""
    body = {"model": model, "messages": [dict(m) for m in messages]}
    return sha256_hex(canonical_json(body))


def scrub_secrets(text: str, secrets: Sequence[str | None]) -> str:
    """``text`` with every occurrence of each secret replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    return text


def schema_instruction(schema: dict[str, Any], purpose: str) -> str:
    """The system-prompt paragraph that asks for JSON matching ``schema``."""
    return (
        f"Conductor request purpose: {purpose}.\n"
        "Answer with exactly one JSON object and nothing else: no prose, no Markdown code fences. "
        "The object must validate against this JSON Schema (draft 2020-12):\n"
        + json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
    )


def with_schema_instruction(messages: Sequence[Message], schema: dict[str, Any], purpose: str) -> list[dict[str, str]]:
    """The messages as sent: the schema instruction joins the first system message (or leads)."""
    sent = [dict(m) for m in messages]
    instruction = schema_instruction(schema, purpose)
    if sent and sent[0].get("role") == "system":
        sent[0]["content"] = f"{sent[0].get('content', '')}\n\n{instruction}"
    else:
        sent.insert(0, {"role": "system", "content": instruction})
    return sent


_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)


def parse_and_validate(text: str, validator: Draft202012Validator) -> tuple[Any, str | None]:
    """``(document, None)`` when ``text`` is JSON valid for the schema, else ``(None, problem)``."""
    fenced = _FENCE.match(text)
    body = fenced.group("body") if fenced else text
    try:
        document = json.loads(body)
    except ValueError as exc:
        return None, f"the reply is not valid JSON ({exc})"
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors[:_MAX_ERRORS_FED_BACK]:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            lines.append(f"at {where}: {error.message}")
        more = f" (and {len(errors) - _MAX_ERRORS_FED_BACK} more)" if len(errors) > _MAX_ERRORS_FED_BACK else ""
        return None, "the JSON does not match the schema: " + "; ".join(lines) + more
    return document, None


def make_validator(schema: dict[str, Any]) -> Draft202012Validator:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"the schema given to complete_json is not a valid JSON Schema: {exc.message}") from exc
    return Draft202012Validator(schema)


class LLMClient:
    """An OpenAI-compatible chat client that returns schema-valid JSON or raises :class:`LLMError`."""

    def __init__(
        self,
        settings: LLMSettings | None = None,
        *,
        env: Mapping[str, str] | None = None,
        recorder: Recorder | None = None,
        base_delay: float = DEFAULT_BASE_DELAY_SECONDS,
        max_delay: float = DEFAULT_MAX_DELAY_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        settings = settings or LLMSettings()
        environ = os.environ if env is None else env
        self.settings = settings
        self.base_url: str = environ.get(ENV_BASE_URL) or settings.base_url
        self._model: str = environ.get(ENV_MODEL) or settings.model
        self.key_source: str | None = None
        self._api_key: str | None = None
        for name in (settings.api_key_env, ENV_API_KEY_FALLBACK):
            value = environ.get(name, "").strip()
            if value:
                self._api_key, self.key_source = value, name
                break
        self.timeout_seconds = float(settings.timeout_seconds)
        self.max_retries = int(settings.max_retries)
        self.recorder = recorder
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._client: openai.OpenAI | None = None

    def __repr__(self) -> str:  # never shows the key
        state = f"key from {self.key_source}" if self.key_source else "no key"
        return f"LLMClient(base_url={self.base_url!r}, model={self._model!r}, {state})"

    @property
    def model(self) -> str:
        return self._model

    def is_configured(self) -> bool:
        """True when an API key was found in the environment."""
        return self._api_key is not None

    def _scrub(self, text: str) -> str:
        return scrub_secrets(text, [self._api_key])

    def _openai(self) -> openai.OpenAI:
        if self._client is None:
            self._client = openai.OpenAI(
                api_key=self._api_key,
                base_url=self.base_url,
                timeout=self.timeout_seconds,
                max_retries=0,  # retries are ours: counted, backed off, and fed the validation error
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def backoff_delay(self, failed_attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failed_attempt``-th request (1-based) failed transiently."""
        delay = self.base_delay * (2 ** (failed_attempt - 1))
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.max_delay)

    def complete_json(self, messages: Sequence[Message], schema: dict[str, Any], purpose: str) -> LLMReply:
        """Ask for a JSON document matching ``schema``; retry until valid or out of attempts."""
        if not self.is_configured():
            raise LLMError(
                f"{purpose}: no API key: set {self.settings.api_key_env} (or {ENV_API_KEY_FALLBACK}) "
                "in the environment, or use handoff mode"
            )
        validator = make_validator(schema)
        first_request = with_schema_instruction(messages, schema, purpose)
        digest = request_digest(first_request, self._model)
        conversation: list[dict[str, str]] = list(first_request)
        usage = Usage()
        max_attempts = 1 + self.max_retries
        problem = "no attempt made"
        infrastructure = False  # was the last problem the endpoint's rather than the answer's?
        for attempt in range(1, max_attempts + 1):
            retry_after: float | None = None
            try:
                completion = self._openai().chat.completions.create(
                    model=self._model,
                    messages=cast(Any, conversation),
                    response_format=cast(Any, {"type": "json_object"}),
                    timeout=self.timeout_seconds,
                    extra_headers={PURPOSE_HEADER: purpose},
                )
            except openai.APITimeoutError:
                problem, infrastructure = f"the request timed out after {self.timeout_seconds:g}s", True
            except openai.APIStatusError as exc:
                status = exc.status_code
                detail = self._scrub(_short(exc.message))
                if status == 429 or status >= 500:
                    problem, infrastructure = f"HTTP {status} from the endpoint: {detail}", True
                    retry_after = _retry_after_seconds(exc.response.headers.get("retry-after"))
                else:
                    raise LLMError(
                        f"{purpose}: the endpoint {self.base_url} refused the request with HTTP {status}: {detail}",
                        usage=usage,
                        attempts=attempt,
                    ) from None
            except openai.APIConnectionError as exc:
                problem, infrastructure = f"could not reach {self.base_url}: {self._scrub(_short(str(exc)))}", True
            else:
                infrastructure = False
                if completion.usage is not None:
                    usage = usage + Usage(
                        prompt_tokens=completion.usage.prompt_tokens or 0,
                        completion_tokens=completion.usage.completion_tokens or 0,
                    )
                text = ""
                if completion.choices:
                    text = completion.choices[0].message.content or ""
                text = self._scrub(text)
                document, invalid = parse_and_validate(text, validator)
                if invalid is None:
                    reply = LLMReply(
                        data=document,
                        raw_text=text,
                        usage=usage,
                        attempts=attempt,
                        purpose=purpose,
                        model=self._model,
                        request_digest=digest,
                    )
                    if self.recorder is not None:
                        self.recorder(
                            LLMRecord(
                                purpose=purpose,
                                request_digest=digest,
                                model=self._model,
                                response_text=text,
                                usage=usage,
                                attempts=attempt,
                            )
                        )
                    return reply
                problem = invalid
                conversation.append({"role": "assistant", "content": text})
                conversation.append(
                    {
                        "role": "user",
                        "content": f"Your previous answer was rejected: {invalid}. "
                        "Answer again with only a JSON object that validates against the schema.",
                    }
                )
                continue  # invalid output is retried at once: waiting does not make it valid
            if attempt < max_attempts:
                self._sleep(self.backoff_delay(attempt, retry_after))
        raise (LLMUnavailable if infrastructure else LLMError)(
            usage=usage,
            attempts=max_attempts,
            message=self._scrub(
                f"{purpose}: no valid answer from model {self._model} at {self.base_url} after "
                f"{max_attempts} attempt{'s' if max_attempts != 1 else ''}; last problem: {problem}"
            ),
        )


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
