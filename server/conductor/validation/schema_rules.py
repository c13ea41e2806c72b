"""Checks a parsed document against its published JSON Schema and places each error.

jsonschema reports errors on instance paths; this module maps each to the node that
causes it: an unknown key to that key (with a "did you mean" from the allowed names), a
missing required key to the key of the mapping that lacks it, a bad value to the value.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from conductor.contract import schemas
from conductor.validation.diagnostics import Diagnostic, Severity
from conductor.validation.document import JsonPath, ParsedDocument

_validators: dict[str, Draft202012Validator] = {}


def validator(kind: str) -> Draft202012Validator:
    if kind not in _validators:
        schema = schemas.load(kind)
        Draft202012Validator.check_schema(schema)
        _validators[kind] = Draft202012Validator(schema)
    return _validators[kind]


def check(doc: ParsedDocument, kind: str) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for error in _leaf_errors(validator(kind).iter_errors(doc.data)):
        found.extend(_diagnose(doc, kind, error))
    found.sort(key=lambda d: (d.range, d.code))
    return found


def _leaf_errors(errors: Any) -> Iterator[ValidationError]:
    """Descend into anyOf/oneOf so the message names the real problem."""
    for error in errors:
        if error.validator in ("anyOf", "oneOf") and error.context:
            best = max(error.context, key=lambda e: len(e.absolute_path))
            yield from _leaf_errors([best]) if best.validator in ("anyOf", "oneOf") else [best]
        else:
            yield error


def _where(path: JsonPath) -> str:
    return ".".join(str(p) for p in path) or "the top level"


def _diagnose(doc: ParsedDocument, kind: str, error: ValidationError) -> list[Diagnostic]:
    path: JsonPath = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        out = []
        for name in error.instance:
            if name in allowed:
                continue
            guess = difflib.get_close_matches(name, sorted(allowed), n=1, cutoff=0.6)
            hint = f"; did you mean `{guess[0]}`?" if guess else f"; allowed keys: {', '.join(sorted(allowed))}"
            data: dict[str, Any] = {"key": name}
            if guess:
                data["suggestion"] = guess[0]
            out.append(
                Diagnostic(
                    doc.key_range((*path, name)),
                    Severity.ERROR,
                    f"{kind}/unknown-key",
                    f"unknown key `{name}` in {_where(path)}{hint}",
                    data,
                )
            )
        return out
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else str(error.validator_value)
        return [
            Diagnostic(
                doc.key_range(path),
                Severity.ERROR,
                f"{kind}/missing-key",
                f"missing required key `{missing}` in {_where(path)}",
                {"key": missing},
            )
        ]
    code, message = _describe(error)
    return [Diagnostic(doc.value_range(path), Severity.ERROR, f"{kind}/{code}", f"{_where(path)}: {message}")]


def _describe(error: ValidationError) -> tuple[str, str]:
    v = error.validator
    value = error.validator_value
    inst = error.instance
    if v == "type":
        return "type", f"expected {_article(value)}, got {_json_type(inst)} {_show(inst)}"
    if v == "enum":
        return "enum", f"{_show(inst)} is not one of {', '.join(_show(x) for x in value)}"
    if v == "const":
        return "enum", f"{_show(inst)} must be {_show(value)}"
    if v in ("minimum", "exclusiveMinimum"):
        return "range", f"{_show(inst)} is below the minimum {value}"
    if v in ("maximum", "exclusiveMaximum"):
        return "range", f"{_show(inst)} is above the maximum {value}"
    if v == "pattern":
        return "pattern", f"{_show(inst)} does not match the expected form {value}"
    if v in ("minLength", "minItems"):
        return "too-short", f"must not be empty ({v} {value})"
    if v in ("maxLength", "maxItems"):
        return "too-long", f"is too long ({v} {value})"
    return "schema", error.message


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "mapping"


def _article(value: Any) -> str:
    names = {
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "array": "a list",
        "object": "a mapping",
        "boolean": "true or false",
        "null": "null",
    }
    if isinstance(value, list):
        return " or ".join(names.get(v, str(v)) for v in value)
    return names.get(value, str(value))


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "…"
