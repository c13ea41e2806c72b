"""Generates the published JSON Schemas from the models, and loads them back at run time.

``python -m conductor.contract.schemas --write`` regenerates ``schemas/*.schema.json``;
``--check`` exits non-zero when the committed files differ (the drift test runs the same
comparison). An installed wheel carries the files as ``conductor/_schemas``; a source
checkout reads them from the repository's ``schemas/`` folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

SCHEMA_BASE_URI = "https://conductor-runtime.dev/schemas/"
KINDS = ("policy", "config", "task", "result", "provenance", "plan", "verdict", "provenance-statement")
"""Every published kind. Reading a schema (:func:`load`) needs no model: the models are imported
only to generate the files (:func:`models`), so validation starts without building them."""


def models() -> dict[str, type[BaseModel]]:
    """The pydantic model of each kind (the source the schema files are generated from)."""
    from conductor.contract.config import Config  # lazy: the models cost ~0.2 s; validation reads the files
    from conductor.contract.plan import Plan  # lazy: see above
    from conductor.contract.policy import Policy  # lazy: see above
    from conductor.contract.provenance import ProvenanceEnvelope, ProvenanceStatement  # lazy: see above
    from conductor.contract.result import Result  # lazy: see above
    from conductor.contract.task import Task  # lazy: see above
    from conductor.contract.verdict import Verdict  # lazy: see above

    found: dict[str, type[BaseModel]] = {
        "policy": Policy, "config": Config, "task": Task, "result": Result, "provenance": ProvenanceEnvelope,
        "plan": Plan, "verdict": Verdict, "provenance-statement": ProvenanceStatement,
    }
    assert tuple(found) == KINDS
    return found


HUMAN_EDITED = frozenset({"policy", "config"})
"""Kinds people write by hand in YAML: an optional key there is left out, never ``null``."""


def generate(kind: str) -> dict[str, Any]:
    """The schema document for ``kind``, exactly as published."""
    model = models()[kind]
    body = model.model_json_schema(mode="validation")
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URI}{kind}.schema.json",
        "title": body.pop("title", model.__name__),
        "description": (model.__doc__ or "").strip(),
    }
    schema.update(body)
    if kind in HUMAN_EDITED:
        _collapse_optional(schema)
    return schema


def _collapse_optional(node: Any) -> None:
    """Turn pydantic's ``anyOf: [X, null]`` with ``default: null`` into plain ``X``.

    In hand-written YAML an optional key is simply left out; a single type gives clearer
    validation messages and hovers than an ``anyOf``. Machine-written JSON (tasks, results,
    plans, provenance) keeps ``null`` as a valid value.
    """
    if isinstance(node, dict):
        any_of = node.get("anyOf")
        if (
            "default" in node
            and node["default"] is None
            and isinstance(any_of, list)
            and len(any_of) == 2
            and {"type": "null"} in any_of
        ):
            (kept,) = [s for s in any_of if s != {"type": "null"}]
            del node["anyOf"]
            del node["default"]
            node.update(kept)
        for value in node.values():
            _collapse_optional(value)
    elif isinstance(node, list):
        for item in node:
            _collapse_optional(item)


def render(kind: str) -> str:
    return json.dumps(generate(kind), indent=2, ensure_ascii=False) + "\n"


def schema_dir() -> Path:
    """Where the schema files are: inside the installed package, else the source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "_schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "schemas"


@cache
def load(kind: str) -> dict[str, Any]:
    """The published schema for ``kind`` (read from the shipped file, not regenerated)."""
    path = schema_dir() / f"{kind}.schema.json"
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def drift(directory: Path) -> list[str]:
    """Kinds whose file in ``directory`` differs from what the models generate."""
    stale = []
    for kind in KINDS:
        path = directory / f"{kind}.schema.json"
        if not path.exists() or path.read_text(encoding="utf-8") != render(kind):
            stale.append(kind)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite schemas/ from the models")
    parser.add_argument("--check", action="store_true", help="exit 1 when schemas/ is stale")
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[3] / "schemas")
    args = parser.parse_args(argv)
    if args.write:
        args.dir.mkdir(parents=True, exist_ok=True)
        for kind in KINDS:
            (args.dir / f"{kind}.schema.json").write_text(render(kind), encoding="utf-8")
        return 0
    stale = drift(args.dir)
    for kind in stale:
        print(f"{args.dir / f'{kind}.schema.json'}: stale, run python -m conductor.contract.schemas --write")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
