"""The published schemas are generated from the models, complete, and shipped in the wheel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from conductor.contract import schemas
from conductor.contract.checksum import task_checksum

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_committed_schema_files_match_the_models():
    assert schemas.drift(SCHEMAS) == [], "run: python -m conductor.contract.schemas --write"


def test_a_stale_schema_file_is_detected(tmp_path):
    for kind in schemas.KINDS:
        (tmp_path / f"{kind}.schema.json").write_text(schemas.render(kind))
    assert schemas.drift(tmp_path) == []
    stale = json.loads((tmp_path / "task.schema.json").read_text())
    stale["properties"]["task_id"]["description"] = "edited by hand"
    (tmp_path / "task.schema.json").write_text(json.dumps(stale))
    assert schemas.drift(tmp_path) == ["task"]


def _properties(node, path=()):
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield (*path, name), sub
        for key, value in node.items():
            if key != "properties":
                yield from _properties(value, (*path, key))
        for name, sub in (node.get("properties") or {}).items():
            yield from _properties(sub, (*path, name))
    elif isinstance(node, list):
        for item in node:
            yield from _properties(item, path)


@pytest.mark.parametrize("kind", schemas.KINDS)
def test_each_schema_is_draft_2020_12_with_id_title_and_described_properties(kind):
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{kind}.schema.json")
    assert schema["title"] and schema["description"]
    props = list(_properties(schema))
    assert props
    for path, sub in props:
        assert sub.get("description"), f"{kind}: {'.'.join(path)} has no description"
        refs = [sub, sub.get("items") or {}, *(sub.get("anyOf") or [])]
        assert "examples" in sub or any("$ref" in r for r in refs), (
            f"{kind}: {'.'.join(path)} has no example"
        )


@pytest.mark.parametrize("kind", ["task", "result"])
def test_task_and_result_carry_a_contract_version(kind):
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    assert "contract_version" in schema["required"]


def test_the_task_checksum_covers_every_field_but_itself():
    task = {"task_id": "step_001", "instruction": "x", "checksum": "old"}
    first = task_checksum(task)
    assert first.startswith("sha256:") and first == task_checksum({**task, "checksum": "other"})
    assert task_checksum({**task, "instruction": "y"}) != first
