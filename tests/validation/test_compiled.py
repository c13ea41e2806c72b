"""The fast validators shipped for policy and config are exactly what fastjsonschema generates now,
and judge every document as the run-time compiled ones do."""

from __future__ import annotations

from pathlib import Path

import fastjsonschema
import pytest

from conductor.contract import schemas
from conductor.validation import compiled, validate_document
from conductor.validation.schema_rules import full_schema

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def test_the_shipped_code_matches_the_schemas_and_fastjsonschema():
    assert compiled.stale() == [], "run python -m conductor.validation.compiled --write"


@pytest.mark.parametrize("kind", compiled.SHIPPED)
def test_the_shipped_validator_is_used_only_for_the_schema_it_was_made_from(kind: str):
    full = full_schema(kind, schemas.load(kind))
    assert compiled.shipped(kind, full) is not None
    assert compiled.shipped(kind, {**full, "required": ["something-else"]}) is None
    assert compiled.shipped("task", full_schema("task", schemas.load("task"))) is None  # not shipped


@pytest.mark.parametrize("kind", compiled.SHIPPED)
def test_shipped_and_run_time_validators_agree_on_every_corpus_document(kind: str):
    full = full_schema(kind, schemas.load(kind))
    shipped = compiled.shipped(kind, full)
    assert shipped is not None
    runtime = fastjsonschema.compile(full, use_default=False)
    files = [p for p in CORPUS.rglob("*.yaml") if p.name.startswith(kind)]
    assert files, f"the corpus has {kind} documents"
    for path in files:
        doc, _ = validate_document(path.read_bytes().decode("utf-8", errors="replace"), kind, path=path)
        if not isinstance(doc.data, dict):
            continue
        verdicts = []
        for validator in (shipped, runtime):
            try:
                validator(doc.data)
                verdicts.append(True)
            except fastjsonschema.JsonSchemaException:
                verdicts.append(False)
        assert verdicts[0] == verdicts[1], path
