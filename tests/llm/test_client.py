"""LLMClient, specified through the real ``openai`` client talking to a real loopback server.

Nothing is mocked: every test sends real HTTP requests to
:class:`tests.support.openai_server.ScriptedOpenAIServer` and reads what it received.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from conductor.contract.config import LLMSettings
from conductor.journal import Journal
from conductor.llm import LLMClient, LLMError, LLMRecord, ReplayLLM
from conductor.llm.client import PURPOSE_HEADER, REDACTED
from tests.support.openai_server import ScriptedOpenAIServer

KEY = "sk-test-" + secrets.token_hex(16)
SCHEMA = {
    "type": "object",
    "required": ["answer"],
    "properties": {"answer": {"type": "integer"}},
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "What is six times seven?"}]


class Clock:
    """Records the backoff delays the client asks for, and really sleeps them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        time.sleep(seconds)


def make_client(
    server: ScriptedOpenAIServer,
    *,
    retries: int = 3,
    timeout: float = 5.0,
    records: list[LLMRecord] | None = None,
    clock: Clock | None = None,
) -> LLMClient:
    settings = LLMSettings(
        base_url=server.base_url, model="scripted-model", max_retries=retries, timeout_seconds=timeout
    )
    return LLMClient(
        settings,
        env={"GEMINI_API_KEY": KEY},
        recorder=records.append if records is not None else None,
        base_delay=0.01,
        sleep=clock or Clock(),
    )


def test_a_scripted_answer_comes_back_parsed_validated_and_costed(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add({"answer": 42}, prompt_tokens=30, completion_tokens=5)
    reply = make_client(openai_server).complete_json(ASK, SCHEMA, purpose="arith")

    assert reply.data == {"answer": 42}
    assert json.loads(reply.raw_text) == {"answer": 42}
    assert reply.attempts == 1
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (30, 5)
    assert reply.purpose == "arith" and reply.model == "scripted-model"


def test_the_request_asks_for_json_carries_the_schema_and_names_its_purpose(
    openai_server: ScriptedOpenAIServer,
) -> None:
    openai_server.add({"answer": 42})
    make_client(openai_server).complete_json(ASK, SCHEMA, purpose="arith")

    (request,) = openai_server.chat_requests
    assert request.body["response_format"] == {"type": "json_object"}
    assert request.body["model"] == "scripted-model"
    system = request.body["messages"][0]
    assert system["role"] == "system" and json.dumps(SCHEMA, separators=(",", ":")) in system["content"]
    assert request.purpose == "arith"
    assert request.headers[PURPOSE_HEADER.lower()] == "arith"


def test_the_key_is_sent_as_the_bearer_header_and_nowhere_else(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add({"answer": 42})
    make_client(openai_server).complete_json(ASK, SCHEMA, purpose="arith")

    (request,) = openai_server.chat_requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in request.raw_body
    assert not [name for name, value in request.headers.items() if KEY in value and name != "authorization"]


def test_invalid_json_is_fed_back_and_the_retry_succeeds(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add("Sure! The answer is 42.")
    openai_server.add({"answer": 42})
    reply = make_client(openai_server).complete_json(ASK, SCHEMA, purpose="arith")

    assert reply.data == {"answer": 42}
    assert reply.attempts == 2
    retry = openai_server.chat_requests[1].body["messages"]
    assert retry[-2] == {"role": "assistant", "content": "Sure! The answer is 42."}
    assert "not valid JSON" in retry[-1]["content"]
    assert reply.usage.prompt_tokens == 22  # both attempts are counted


def test_a_schema_mismatch_is_fed_back_with_where_it_is_wrong(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add({"answer": "forty-two"})
    openai_server.add({"answer": 42})
    reply = make_client(openai_server).complete_json(ASK, SCHEMA, purpose="arith")

    assert reply.attempts == 2
    feedback = openai_server.chat_requests[1].last_user_message
    assert "does not match the schema" in feedback and "at answer" in feedback


def test_json_inside_a_code_fence_is_accepted(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add('```json\n{"answer": 42}\n```')
    assert make_client(openai_server).complete_json(ASK, SCHEMA, purpose="arith").data == {"answer": 42}


def test_429_is_retried_with_exponential_backoff(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(status=429, times=2)
    openai_server.add({"answer": 42})
    clock = Clock()
    reply = make_client(openai_server, clock=clock).complete_json(ASK, SCHEMA, purpose="arith")

    assert reply.attempts == 3
    assert clock.delays == [0.01, 0.02]
    assert len(openai_server.chat_requests) == 3


def test_retry_after_from_the_endpoint_is_honoured(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(status=429, headers={"Retry-After": "0.2"})
    openai_server.add({"answer": 42})
    clock = Clock()
    make_client(openai_server, clock=clock).complete_json(ASK, SCHEMA, purpose="arith")
    assert clock.delays == [0.2]


def test_500s_until_retries_are_exhausted_give_a_clear_error(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(status=500, times=None, error_message="backend exploded")
    with pytest.raises(LLMError) as caught:
        make_client(openai_server, retries=2).complete_json(ASK, SCHEMA, purpose="plan")

    message = str(caught.value)
    assert "plan" in message and "after 3 attempts" in message and "HTTP 500" in message
    assert "backend exploded" in message
    assert len(openai_server.chat_requests) == 3
    assert KEY not in message


def test_a_timeout_is_retried(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add({"answer": 1}, delay=1.5)
    openai_server.add({"answer": 42})
    started = time.monotonic()
    reply = make_client(openai_server, timeout=0.3).complete_json(ASK, SCHEMA, purpose="arith")

    assert reply.data == {"answer": 42} and reply.attempts == 2
    assert time.monotonic() - started < 1.5


def test_only_timeouts_end_in_an_error_that_says_so(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add({"answer": 1}, delay=1.0, times=None)
    with pytest.raises(LLMError, match=r"timed out after 0\.2s"):
        make_client(openai_server, retries=1, timeout=0.2).complete_json(ASK, SCHEMA, purpose="arith")


def test_a_client_error_is_not_retried_and_an_echoed_key_is_redacted(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(status=401, error_message=f"API key {KEY} not valid. Please pass a valid API key.")
    with pytest.raises(LLMError) as caught:
        make_client(openai_server).complete_json(ASK, SCHEMA, purpose="plan")

    assert len(openai_server.chat_requests) == 1
    assert "HTTP 401" in str(caught.value)
    assert KEY not in str(caught.value) and REDACTED in str(caught.value)
    assert KEY not in repr(caught.value)


def test_an_unreachable_endpoint_is_a_clear_error() -> None:
    with ScriptedOpenAIServer() as server:
        url = server.base_url
    client = LLMClient(
        LLMSettings(base_url=url, max_retries=1, timeout_seconds=2), env={"GEMINI_API_KEY": KEY}, base_delay=0.01
    )
    with pytest.raises(LLMError, match="could not reach"):
        client.complete_json(ASK, SCHEMA, purpose="plan")


def test_without_a_key_the_client_is_not_configured_and_sends_nothing(openai_server: ScriptedOpenAIServer) -> None:
    client = LLMClient(LLMSettings(base_url=openai_server.base_url), env={})
    assert not client.is_configured()
    with pytest.raises(LLMError, match=r"GEMINI_API_KEY.*CONDUCTOR_API_KEY"):
        client.complete_json(ASK, SCHEMA, purpose="plan")
    assert openai_server.requests == []


def test_environment_overrides_config_and_the_fallback_key_is_used() -> None:
    env = {
        "CONDUCTOR_API_KEY": KEY,
        "CONDUCTOR_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "CONDUCTOR_LLM_MODEL": "other-model",
    }
    client = LLMClient(LLMSettings(api_key_env="MY_KEY"), env=env)
    assert client.is_configured() and client.key_source == "CONDUCTOR_API_KEY"
    assert client.base_url == "http://127.0.0.1:9/v1" and client.model == "other-model"
    assert KEY not in repr(client)

    primary = LLMClient(LLMSettings(api_key_env="MY_KEY"), env={"MY_KEY": "k-primary-1234", "CONDUCTOR_API_KEY": KEY})
    assert primary.key_source == "MY_KEY"


def test_the_default_endpoint_is_geminis() -> None:
    client = LLMClient(env={"GEMINI_API_KEY": KEY})
    assert client.base_url.startswith("https://generativelanguage.googleapis.com/")
    assert client.key_source == "GEMINI_API_KEY"


def test_an_invalid_schema_is_refused_before_any_request(openai_server: ScriptedOpenAIServer) -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        make_client(openai_server).complete_json(ASK, {"type": "no-such-type"}, purpose="plan")
    assert openai_server.requests == []


def test_every_reply_is_recorded_and_replays_without_a_network(tmp_path: object) -> None:
    records: list[LLMRecord] = []
    with ScriptedOpenAIServer() as server:
        server.add("oops")  # one invalid answer first: the recording holds the final, valid one
        server.add({"answer": 42}, prompt_tokens=9, completion_tokens=3)
        live = make_client(server, records=records).complete_json(ASK, SCHEMA, purpose="arith")

    (record,) = records
    assert record.purpose == "arith" and record.request_digest == live.request_digest
    assert record.usage.prompt_tokens == 20 and record.attempts == 2
    assert json.loads(record.response_text) == {"answer": 42}

    # The server is gone: a replay must not need it.
    replayed = ReplayLLM(records).complete_json(ASK, SCHEMA, purpose="arith")
    assert replayed.data == live.data and replayed.request_digest == live.request_digest

    with pytest.raises(LLMError, match="no recorded reply"):
        ReplayLLM(records).complete_json([{"role": "user", "content": "something else"}], SCHEMA, purpose="arith")


def test_replay_reads_llm_calls_from_the_journal(tmp_path: object, openai_server: ScriptedOpenAIServer) -> None:
    from pathlib import Path

    journal = Journal(Path(str(tmp_path)) / "journal.jsonl", plan_id="p1")
    openai_server.add({"answer": 1})
    openai_server.add({"answer": 2})
    client = make_client(openai_server, records=[])
    client.recorder = lambda record: journal.append("llm.call", **record.event_data())
    first = client.complete_json(ASK, SCHEMA, purpose="arith")
    second = client.complete_json(ASK, SCHEMA, purpose="arith")  # same request, different answer

    replay = ReplayLLM.from_events(journal.events())
    assert replay.complete_json(ASK, SCHEMA, purpose="arith").data == first.data
    assert replay.complete_json(ASK, SCHEMA, purpose="arith").data == second.data


def test_the_key_never_leaks_into_errors_records_or_the_journal(
    tmp_path: object, openai_server: ScriptedOpenAIServer
) -> None:
    from pathlib import Path

    journal = Journal(Path(str(tmp_path)) / "journal.jsonl", plan_id="p1")
    records: list[LLMRecord] = []
    client = make_client(openai_server, retries=1, records=records, timeout=0.3)
    client.recorder = lambda record: (records.append(record), journal.append("llm.call", **record.event_data()))
    errors: list[str] = []

    openai_server.add(f"I saw your key {KEY}, here: not json")  # an echo, scrubbed before it is recorded
    openai_server.add({"answer": 42})
    client.complete_json(ASK, SCHEMA, purpose="echo")
    openai_server.add(status=403, error_message=f"key {KEY} has no access")
    openai_server.add(status=500, times=2, error_message=f"internal error for {KEY}")
    openai_server.add({"answer": 1}, delay=1.0, times=2)
    for _ in range(3):
        try:
            client.complete_json(ASK, SCHEMA, purpose="fail")
        except LLMError as exc:
            errors.append(str(exc) + repr(exc))

    assert len(errors) == 3
    assert all(KEY not in e for e in errors)
    assert all(KEY not in r.model_dump_json() for r in records)
    assert KEY.encode() not in journal.path.read_bytes()
    assert KEY not in repr(client)
    # …while the endpoint did get it, as the Bearer header, on every request.
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in openai_server.chat_requests)


def test_a_model_that_never_answers_validly_fails_clearly_and_reports_what_it_cost(
    openai_server: ScriptedOpenAIServer,
) -> None:
    openai_server.add("still not JSON", times=None, prompt_tokens=10, completion_tokens=2)
    with pytest.raises(LLMError) as caught:
        make_client(openai_server, retries=2).complete_json(ASK, SCHEMA, purpose="plan")

    assert "after 3 attempts" in str(caught.value) and "not valid JSON" in str(caught.value)
    assert caught.value.attempts == 3
    assert (caught.value.usage.prompt_tokens, caught.value.usage.completion_tokens) == (30, 6)
