"""The scripted server itself: the OpenAI API surface it offers, its rules, and its command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.support.openai_server import Rule, ScriptedOpenAIServer, load_script

REPO = Path(__file__).resolve().parents[2]


def client_for(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="k-test-123456", base_url=base_url, max_retries=0, timeout=5)


def test_it_lists_models_and_answers_chat_completions_with_usage(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add("hello there", prompt_tokens=4, completion_tokens=2)
    client = client_for(openai_server.base_url)
    assert [m.id for m in client.models.list()] == ["scripted-model"]
    completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "hello there"
    assert completion.usage is not None and completion.usage.total_tokens == 6


def test_rules_match_on_the_last_user_message_and_are_used_up(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add("about cats", match="cat")
    openai_server.add("anything", times=None)
    client = client_for(openai_server.base_url)

    def ask(text: str) -> str | None:
        messages = [{"role": "user", "content": text}]
        return client.chat.completions.create(model="m", messages=messages).choices[0].message.content  # type: ignore[arg-type]

    assert ask("tell me about dogs") == "anything"
    assert ask("tell me about cats") == "about cats"
    assert ask("tell me about cats") == "anything"  # the cat rule was used once


def test_an_unmatched_request_is_a_400_that_says_so(openai_server: ScriptedOpenAIServer) -> None:
    with pytest.raises(openai.BadRequestError, match="no scripted rule matched"):
        client_for(openai_server.base_url).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )


def test_scripts_load_from_json_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [{"purpose": "plan", "reply": {"a": 1}}, {"status": 429}]}))
    rules = load_script(script)
    assert rules[0].purpose == "plan" and rules[1].status == 429
    with pytest.raises(ValueError, match="unknown rule keys"):
        Rule.from_dict({"replyy": 1})


def test_it_runs_standalone_from_the_command_line(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [{"reply": "from the script", "times": None}]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--script", str(script), "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        base_url = banner.rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        completion = client_for(base_url).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content == "from the script"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_streamed_chat_completion_arrives_in_chunks_with_its_finish_reason(
    openai_server: ScriptedOpenAIServer,
) -> None:
    openai_server.add("a streamed answer", finish_reason="length")
    stream = client_for(openai_server.base_url).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert len(chunks) > 2
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a streamed answer"
    assert chunks[-1].choices[0].finish_reason == "length"


def test_rules_match_on_the_system_prompt_and_on_the_api(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add("fix: a commit message", system="one-line Git commit messages")
    openai_server.add("the edit", api="chat")
    client = client_for(openai_server.base_url)
    messages = [{"role": "system", "content": "You generate concise, one-line Git commit messages."},
                {"role": "user", "content": "diff"}]
    first = client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    second = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "diff"}])
    assert (first.choices[0].message.content, second.choices[0].message.content) == (
        "fix: a commit message", "the edit")


def test_the_responses_api_streams_a_tool_call_then_a_message(openai_server: ScriptedOpenAIServer) -> None:
    call = {"type": "function_call", "name": "exec_command", "arguments": json.dumps({"cmd": "ls"})}
    openai_server.add([call], api="responses")
    openai_server.add("all done", api="responses", match="function_call_output")
    client = client_for(openai_server.base_url)

    events = list(client.responses.create(model="m", input="list the files", stream=True))
    assert [e.type for e in events] == ["response.created", "response.output_item.added",
                                        "response.output_item.done", "response.completed"]
    item = events[-1].response.output[0]
    assert item.type == "function_call" and item.name == "exec_command"

    follow_up = [{"type": "function_call_output", "call_id": item.call_id, "output": "a.txt"}]
    done = client.responses.create(model="m", input=follow_up, stream=False)  # type: ignore[arg-type]
    assert done.output_text == "all done"
    assert len(openai_server.responses_requests) == 2


def test_refusals_and_empty_choices_come_in_the_api_shape(openai_server: ScriptedOpenAIServer) -> None:
    openai_server.add(refusal="I won't.")
    openai_server.add(empty_choices=True)
    client = client_for(openai_server.base_url)
    refused = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert refused.choices[0].message.refusal == "I won't." and refused.choices[0].message.content is None
    empty = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert empty.choices == []
