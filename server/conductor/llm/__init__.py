"""Talking to an OpenAI-compatible chat endpoint, and answering from recordings instead.

:class:`LLMClient` asks for JSON, validates it against a JSON Schema and retries with
backoff; every reply can be recorded so :class:`ReplayLLM` can answer the same requests
later without any network (``conductor replay``). Planning prompts live in
:mod:`conductor.llm.prompts`.
"""

from conductor.llm.client import (
    DEFAULT_BASE_DELAY_SECONDS,
    ENV_API_KEY_FALLBACK,
    ENV_BASE_URL,
    ENV_MODEL,
    LLMClient,
    LLMError,
    LLMRecord,
    LLMReply,
    LLMUnavailable,
    Recorder,
    StructuredLLM,
    Usage,
    request_digest,
    scrub_secrets,
)
from conductor.llm.replay import ReplayLLM

__all__ = [
    "DEFAULT_BASE_DELAY_SECONDS",
    "ENV_API_KEY_FALLBACK",
    "ENV_BASE_URL",
    "ENV_MODEL",
    "LLMClient",
    "LLMError",
    "LLMRecord",
    "LLMReply",
    "LLMUnavailable",
    "Recorder",
    "ReplayLLM",
    "StructuredLLM",
    "Usage",
    "request_digest",
    "scrub_secrets",
]
