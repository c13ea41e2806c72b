"""The fast schema check (fastjsonschema first, jsonschema only where something fails) finds
exactly the errors a full jsonschema walk finds, at the same paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from conductor.contract import schemas
from conductor.validation.document import parse
from conductor.validation.kinds import syntax_of
from conductor.validation.schema_rules import schema_errors

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def documents() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(CORPUS).parts
        kind = rel[1] if rel[0] == "broken" else {"policy.yaml": "policy", "config.yaml": "config"}.get(path.name)
        if kind is None:
            kind = next(k for k in ("task", "result", "plan", "provenance") if f".{k}." in path.name)
        if isinstance(parse(path.read_text(encoding="utf-8", errors="replace"), syntax_of(path)).data, dict):
            found.append((kind, path))  # documents that reach the schema check
    assert len(found) >= 40
    return found


def signature(errors) -> set[tuple[tuple, str]]:
    return {(tuple(e.absolute_path), e.validator) for e in errors}


@pytest.mark.parametrize(("kind", "path"), documents(), ids=lambda v: v if isinstance(v, str) else v.parent.name)
def test_fast_check_agrees_with_a_full_jsonschema_walk(kind: str, path: Path):
    doc = parse(path.read_text(encoding="utf-8", errors="replace"), syntax_of(path))
    full = Draft202012Validator(schemas.load(kind)).iter_errors(doc.data)
    assert signature(schema_errors(doc.data, kind)) == signature(full)


def test_an_error_deep_in_a_long_list_is_found_at_its_index():
    data = {"file_rules": {"protected_patterns": [f"p{i}/**" for i in range(3000)]}}
    data["file_rules"]["protected_patterns"][2718] = 5
    (error,) = schema_errors(data, "policy")
    assert tuple(error.absolute_path) == ("file_rules", "protected_patterns", 2718)


def test_checking_never_changes_the_document():
    import copy

    data = {"contract_version": "1.0", "task_id": "step_001", "status": "completed"}
    before = copy.deepcopy(data)
    assert schema_errors(data, "result") == []
    assert data == before, "the schema check wrote defaults into the document"
