"""Model replies as they really come: prose, fences, truncation, empty choices, refusals, outages.

Every reply here is sent by the real scripted server over loopback HTTP and read by the real
``openai`` client inside :class:`LLMClient`; each test names what the user is told.
"""

from __future__ import annotations

import pytest

from conductor.llm import LLMClient, LLMError, LLMRefusal, LLMUnavailable, extract_json
from conductor.llm.client import make_validator
from tests.llm.test_client import ASK, KEY, SCHEMA, make_client
from tests.support.openai_server import ScriptedOpenAIServer

PLAN_LIKE = {
    "type": "object",
    "required": ["steps"],
    "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
}


def test_json_wrapped_in_prose_is_taken_at_the_first_attempt(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add('Sure! Here is the answer you asked for: {"answer": 42}. Let me know if you need more.')
    reply = make_client(openai_server).complete_json(ASK, SCHEMA, purpose="arith")
    assert reply.data == {"answer": 42}
    assert reply.attempts == 1


def test_a_json_fence_inside_prose_is_taken_at_the_first_attempt(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add('I thought about it.\n\n```json\n{\n  "answer": 42\n}\n```\n\nThat is all: {not json}.')
    reply = make_client(openai_server).complete_json(ASK, SCHEMA, purpose="arith")
    assert reply.data == {"answer": 42} and reply.attempts == 1


def test_of_several_objects_in_a_reply_the_one_that_fits_the_schema_wins() -> None:
    text = 'Example of the format: {"answer": "n"}. My real answer: {"answer": 42}'
    document, problem = extract_json(text, make_validator(SCHEMA))
    assert (document, problem) == ({"answer": 42}, None)


def test_a_reply_with_no_json_says_so_and_an_empty_one_says_it_is_empty() -> None:
    validator = make_validator(SCHEMA)
    assert extract_json("I cannot do that in JSON, sorry.", validator)[1] == (
        "the reply is not valid JSON and holds no JSON object")
    assert extract_json("   ", validator)[1] == "the reply is empty (no text at all)"
    document, problem = extract_json('Here: {"answer": "x"}', validator)
    assert document is None and problem is not None and "does not match the schema" in problem


def test_a_truncated_reply_is_named_and_retried_once_with_four_times_the_budget(
    openai_server: ScriptedOpenAIServer,
) -> None:
    openai_server.add('{"steps": ["one", "two", "thr', finish_reason="length")
    openai_server.add({"steps": ["one", "two", "three"]})
    reply = make_client(openai_server, retries=0).complete_json(ASK, PLAN_LIKE, purpose="plan")

    assert reply.data == {"steps": ["one", "two", "three"]} and reply.attempts == 2
    first, second = openai_server.chat_requests
    assert first.body["max_tokens"] == 16384
    assert second.body["max_tokens"] == 4 * 16384
    # the cut-off text is not fed back as if it were a wrong answer
    assert second.body["messages"] == first.body["messages"]


def test_a_reply_truncated_twice_is_reported_as_truncation_not_as_bad_json(
    openai_server: ScriptedOpenAIServer,
) -> None:
    openai_server.add('{"steps": ["one", "tw', finish_reason="length", times=None)
    with pytest.raises(LLMError) as caught:
        make_client(openai_server, retries=3).complete_json(ASK, PLAN_LIKE, purpose="plan")

    message = str(caught.value)
    assert "truncated at the output limit (finish_reason: length, max_tokens 65536" in message
    assert "already retried once with a larger budget" in message
    assert "not valid JSON" not in message and "delimiter" not in message
    assert not isinstance(caught.value, LLMUnavailable)
    assert len(openai_server.chat_requests) == 2  # one retry, not every retry left


def test_an_empty_choices_list_is_named(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(empty_choices=True, times=None)
    with pytest.raises(LLMError) as caught:
        make_client(openai_server, retries=1).complete_json(ASK, SCHEMA, purpose="plan")
    assert "empty `choices` list" in str(caught.value)
    assert "not valid JSON" not in str(caught.value)


def test_an_empty_choices_list_once_is_asked_again(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(empty_choices=True)
    openai_server.add({"answer": 42})
    reply = make_client(openai_server).complete_json(ASK, SCHEMA, purpose="arith")
    assert reply.data == {"answer": 42} and reply.attempts == 2


def test_a_refusal_is_named_and_not_retried(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(refusal="I can't help with modifying that system.", times=None)
    with pytest.raises(LLMRefusal) as caught:
        make_client(openai_server).complete_json(ASK, SCHEMA, purpose="step")
    assert "refused to answer: I can't help with modifying that system." in str(caught.value)
    assert len(openai_server.chat_requests) == 1


def test_a_content_filter_stop_is_a_refusal(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add("", finish_reason="content_filter")
    with pytest.raises(LLMRefusal, match="content_filter"):
        make_client(openai_server).complete_json(ASK, SCHEMA, purpose="step")


def test_an_endpoint_that_is_down_raises_llm_unavailable() -> None:
    with ScriptedOpenAIServer() as server:
        url = server.base_url
    from conductor.contract.config import LLMSettings

    client = LLMClient(LLMSettings(base_url=url, max_retries=1, timeout_seconds=2), env={"GEMINI_API_KEY": KEY},
                       base_delay=0.01)
    with pytest.raises(LLMUnavailable, match="could not reach") as caught:
        client.complete_json(ASK, SCHEMA, purpose="plan")
    assert isinstance(caught.value, LLMError)  # callers that only know LLMError still catch it
    assert caught.value.attempts == 2


def test_repeated_5xx_raise_llm_unavailable(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(status=503, times=None, error_message="overloaded")
    with pytest.raises(LLMUnavailable, match="HTTP 503"):
        make_client(openai_server, retries=2).complete_json(ASK, SCHEMA, purpose="plan")
    assert len(openai_server.chat_requests) == 3


def test_5xx_then_a_wrong_answer_is_the_models_fault_not_an_outage(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(status=500)
    openai_server.add("no idea", times=None)
    with pytest.raises(LLMError) as caught:
        make_client(openai_server, retries=2).complete_json(ASK, SCHEMA, purpose="plan")
    assert not isinstance(caught.value, LLMUnavailable)
    assert "holds no JSON object" in str(caught.value)


def test_a_client_error_is_not_an_outage(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(status=401, error_message="bad key")
    with pytest.raises(LLMError) as caught:
        make_client(openai_server).complete_json(ASK, SCHEMA, purpose="plan")
    assert not isinstance(caught.value, LLMUnavailable)


def test_without_an_output_budget_none_is_sent_and_a_truncation_retry_sets_one(
    openai_server: ScriptedOpenAIServer,
) -> None:
    from conductor.contract.config import LLMSettings

    openai_server.add('{"answer": 4', finish_reason="length")
    openai_server.add({"answer": 42})
    settings = LLMSettings(base_url=openai_server.base_url, model="scripted-model", max_output_tokens=None)
    client = LLMClient(settings, env={"GEMINI_API_KEY": KEY}, base_delay=0.01)
    assert client.complete_json(ASK, SCHEMA, purpose="arith").data == {"answer": 42}
    first, second = openai_server.chat_requests
    assert "max_tokens" not in first.body
    assert second.body["max_tokens"] == 4 * 16384
