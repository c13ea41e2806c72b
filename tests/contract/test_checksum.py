"""Task checksums are RFC 8785 (JCS): the same bytes in every language; contract 1.0 tasks keep theirs."""

from __future__ import annotations

import hashlib
import json

from conductor.contract.checksum import canonical_json, task_checksum


def test_numbers_are_written_as_ecmascript_writes_them():
    assert canonical_json({"score": 1.0, "big": 1e21, "small": 0.1, "neg": -0.0}) == \
        b'{"big":1e+21,"neg":0,"score":1,"small":0.1}'


def test_keys_sort_by_utf16_code_units_and_unicode_stays_utf8():
    value = {"\U0001f600": 1, "\ufb01": 2, "é": 3, "a": {"z": [1, {"y": "ß"}], "b": None}}
    assert canonical_json(value) == '{"a":{"b":null,"z":[1,{"y":"ß"}]},"é":3,"😀":1,"ﬁ":2}'.encode()


def test_a_task_checksum_covers_every_field_but_itself():
    task = {"contract_version": "2.0", "task_id": "step_001", "confidence": {"score": 1.0, "level": "high"}}
    expected = "sha256:" + hashlib.sha256(
        b'{"confidence":{"level":"high","score":1},"contract_version":"2.0","task_id":"step_001"}').hexdigest()
    assert task_checksum(task) == expected == task_checksum({**task, "checksum": "anything"})


def test_contract_1_0_tasks_keep_the_python_form():
    task = {"contract_version": "1.0", "confidence": {"score": 1.0}}
    legacy = json.dumps(task, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert task_checksum(task) == "sha256:" + hashlib.sha256(legacy).hexdigest()
