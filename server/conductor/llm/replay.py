"""Answers model requests from recorded replies, without any network.

Why it exists: ``conductor replay`` re-runs planning exactly as it happened. Every live call
was journaled as an ``llm.call`` event carrying the request digest (SHA-256 of the model and
the messages as first sent) and the raw response text. :class:`ReplayLLM` computes the same
digest for each new request and returns the recorded text, validated against the schema
like a live reply. A request that was never recorded is an :class:`LLMError`, never a
network call.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from conductor.llm.client import (
    LLMError,
    LLMRecord,
    LLMReply,
    Message,
    make_validator,
    parse_and_validate,
    request_digest,
    with_schema_instruction,
)


class ReplayLLM:
    """A :class:`~conductor.llm.client.StructuredLLM` that answers from :class:`LLMRecord` s.

    Records with the same digest are answered in the order they were recorded; once they are
    used up, the last one is repeated (a re-run may ask the same question more often).
    """

    def __init__(self, records: Iterable[LLMRecord], model: str | None = None) -> None:
        self._by_digest: dict[str, deque[LLMRecord]] = defaultdict(deque)
        self._last: dict[str, LLMRecord] = {}
        self._models: list[str] = []
        for record in records:
            self._by_digest[record.request_digest].append(record)
            self._last[record.request_digest] = record
            if record.model not in self._models:
                self._models.append(record.model)
        self._model = model or (self._models[0] if self._models else "replay")
        self.answered: list[LLMRecord] = []

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any] | Any]) -> ReplayLLM:
        """Build from journal events (dicts or :class:`conductor.journal.Event`); keeps ``llm.call`` ones."""
        records = []
        for event in events:
            kind = event.get("type") if isinstance(event, Mapping) else getattr(event, "type", None)
            data = event.get("data") if isinstance(event, Mapping) else getattr(event, "data", None)
            if kind == "llm.call" and isinstance(data, Mapping):
                records.append(LLMRecord.model_validate({k: data[k] for k in LLMRecord.model_fields if k in data}))
        return cls(records)

    @property
    def model(self) -> str:
        return self._model

    def is_configured(self) -> bool:
        return True

    def complete_json(self, messages: Sequence[Message], schema: dict[str, Any], purpose: str) -> LLMReply:
        sent = with_schema_instruction(messages, schema, purpose)
        for model in self._models or [self._model]:
            digest = request_digest(sent, model)
            if digest in self._by_digest:
                break
        else:
            wanted = request_digest(sent, self._model)[:12]
            raise LLMError(
                f"{purpose}: no recorded reply for this request (digest {wanted}…); "
                "the prompt, the schema or the model differ from the recorded run"
            )
        queue = self._by_digest[digest]
        record = queue.popleft() if queue else self._last[digest]
        document, invalid = parse_and_validate(record.response_text, make_validator(schema))
        if invalid is not None:
            raise LLMError(f"{purpose}: the recorded reply no longer matches the schema: {invalid}")
        self.answered.append(record)
        return LLMReply(
            data=document,
            raw_text=record.response_text,
            usage=record.usage,
            attempts=record.attempts,
            purpose=purpose,
            model=record.model,
            request_digest=digest,
        )
