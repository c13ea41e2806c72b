"""The model as the engine sees it: every answer journaled, recorded answers reused first.

On a fresh run every call goes to the live client and its reply is journaled as an
``llm.call`` event. On ``resume`` (or ``replay``) a request whose digest was already
journaled is answered from the journal, in recorded order, before anything is sent: a
crashed plan never pays twice for the same question and replays exactly.

Every request passes :func:`conductor.secrets.redact` before it is digested or sent: a key that
reached a prompt (a verification's output, a file's content) never leaves the machine; every
reply passes it before the engine acts on it (an endpoint that echoes a key).
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

from conductor import secrets
from conductor.journal.journal import Journal
from conductor.llm import LLMError, LLMRecord, LLMReply, StructuredLLM, request_digest
from conductor.llm.client import Message, make_validator, parse_and_validate, with_schema_instruction


class JournaledLLM:
    """A :class:`StructuredLLM` over an optional live client and a plan's journal."""

    def __init__(self, live: StructuredLLM | None, journal: Journal) -> None:
        self.live = live
        self.journal = journal
        self._recorded: dict[str, deque[LLMRecord]] = defaultdict(deque)
        self._lock = threading.Lock()
        for event in journal.events(types="llm.call"):
            record = LLMRecord.model_validate({k: event.data[k] for k in LLMRecord.model_fields if k in event.data})
            self._recorded[record.request_digest].append(record)
        self.live_calls = 0
        self.replayed_calls = 0

    @property
    def model(self) -> str:
        return self.live.model if self.live is not None else "replay"

    def is_configured(self) -> bool:
        return self.live is not None and self.live.is_configured()

    def record(self, record: LLMRecord) -> None:
        """Recorder hook for the live client: journal the reply as an ``llm.call`` event."""
        self.journal.append("llm.call", **record.event_data())

    def complete_json(self, messages: Sequence[Message], schema: dict[str, Any], purpose: str) -> LLMReply:
        messages = secrets.redact(list(messages))
        sent = with_schema_instruction(messages, schema, purpose)
        digest = request_digest(sent, self.model)
        with self._lock:
            queue = self._recorded.get(digest)
            record = queue.popleft() if queue else None
        if record is not None:
            document, invalid = parse_and_validate(record.response_text, make_validator(schema))
            if invalid is None:
                self.replayed_calls += 1
                return LLMReply(data=document, raw_text=record.response_text, usage=record.usage,
                                attempts=record.attempts, purpose=purpose, model=record.model,
                                request_digest=digest)
        if self.live is None or not self.live.is_configured():
            raise LLMError(f"{purpose}: no model is configured and no recorded reply matches this request")
        self.live_calls += 1
        reply = self.live.complete_json(messages, schema, purpose)
        # a reply that echoes a key (some endpoints do) is redacted as the journal will record it, so a
        # live run and its resumed replay act on the same document
        return reply.model_copy(update={"data": secrets.redact(reply.data),
                                        "raw_text": secrets.redactor().text(reply.raw_text)})
