"""Checks a parsed document against its published JSON Schema and places each error.

jsonschema reports errors on instance paths; this module maps each to the node that
causes it: an unknown key to that key (with a "did you mean" from the allowed names), a
missing required key to the key of the mapping that lacks it, a bad value to the value.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import fastjsonschema

from conductor.contract import schemas
from conductor.validation import compiled
from conductor.validation.diagnostics import Diagnostic, Severity
from conductor.validation.document import JsonPath, ParsedDocument

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

_fast: dict[tuple[str, str], Any] = {}
_slow: dict[tuple[str, str], Draft202012Validator] = {}
SMALL = 400
"""A (sub)document of at most this many nodes is checked by jsonschema alone: compiling a fast
validator for it would cost more than it saves (the first diagnostics of a 12-line policy)."""


def full_schema(kind: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A (sub)schema of ``kind`` as a schema of its own: with the root's ``$schema`` and ``$defs``."""
    root = schemas.load(kind)
    body = {k: v for k, v in schema.items() if k not in ("$id", "$schema", "$defs")}
    return {"$schema": root["$schema"], "$defs": root.get("$defs", {}), **body}


def _fast_for(kind: str, where: str, schema: dict[str, Any]) -> Any:
    """The yes/no validator of one (sub)schema of ``kind``: the schema compiled to Python (fastjsonschema).

    The published schemas are checked against the draft's metaschema by the tests
    (``tests/contract/test_schemas.py``), not on every start: that check cost more than all the rest."""
    key = (kind, where)
    if key not in _fast:
        full = full_schema(kind, schema)
        found = compiled.shipped(kind, full) if where == "" else None  # generated ahead of time
        # use_default=False: a check must never write defaults into the document it checks
        _fast[key] = found or fastjsonschema.compile(full, handlers={"http": _no_remote, "https": _no_remote},
                                                     use_default=False)
    return _fast[key]


def _slow_for(kind: str, where: str, schema: dict[str, Any]) -> Draft202012Validator:
    """The error-collecting validator of one (sub)schema of ``kind`` (jsonschema)."""
    key = (kind, where)
    if key not in _slow:
        from jsonschema import Draft202012Validator  # lazy: ~0.1 s; a valid policy or config is checked without it

        _slow[key] = Draft202012Validator(full_schema(kind, schema))
    return _slow[key]


def _validators_for(kind: str, where: str, schema: dict[str, Any]) -> tuple[Any, Draft202012Validator]:
    """(fast yes/no validator, error-collecting validator) for one (sub)schema of ``kind``."""
    return _fast_for(kind, where, schema), _slow_for(kind, where, schema)


def _small(data: Any, limit: int = SMALL) -> bool:
    """Whether ``data`` has at most ``limit`` nodes (stops counting once over)."""
    left = limit
    stack = [data]
    while stack:
        node = stack.pop()
        left -= 1
        if left < 0:
            return False
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def _no_remote(uri: str) -> Any:
    """Our schemas reference only their own ``$defs``; nothing is ever fetched."""
    raise ValueError(f"refusing to fetch a remote schema ({uri})")


def warm_up(kind: str, fast: bool = True) -> None:
    """Prepare the validators of ``kind`` ahead of the first document (the LSP does it at start-up):
    the error-collecting one (cheap), and with ``fast`` the compiled one large documents need."""
    if fast:
        _validators_for(kind, "", schemas.load(kind))
    else:
        _slow_for(kind, "", schemas.load(kind))


def _fast_ok(fast: Any, data: Any) -> bool:
    try:
        fast(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def _resolve(kind: str, schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**schemas.load(kind)["$defs"][ref.removeprefix("#/$defs/")],
                **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def schema_errors(data: Any, kind: str) -> list[ValidationError]:
    """Every schema error of ``data``, found without walking the parts that are valid.

    fastjsonschema (the schema compiled to Python code) says yes or no in microseconds;
    jsonschema collects errors with their paths but walks every node (100 ms for a 5,000-entry
    list). So each mapping and list is checked fast first, and jsonschema only descends into
    the keys and items that fail. Our schemas use only keywords that mean the same in every draft both libraries
    know, so their verdicts agree (the corpus tests check the result).
    """
    return list(_errors(kind, "", schemas.load(kind), data, ()))


def _errors(kind: str, where: str, schema: dict[str, Any], data: Any, path: JsonPath) -> Iterator[ValidationError]:
    small = _small(data)
    # a fast check first, unless it would have to be compiled for a small (sub)document
    if (not small or (kind, where) in _fast or (where == "" and kind in compiled.SHIPPED)) \
            and _fast_ok(_fast_for(kind, where, schema), data):
        return
    slow = _slow_for(kind, where, schema)
    if small:
        for error in slow.iter_errors(data):
            error.path.extendleft(reversed(path))
            yield error
        return
    items = schema.get("items")
    if isinstance(items, dict) and isinstance(data, list) and "anyOf" not in schema:
        outer = _slow_for(kind, f"{where}#shallow", {k: v for k, v in schema.items() if k != "items"})
        for error in outer.iter_errors(data):
            error.path.extendleft(reversed(path))
            yield error
        for i, item in enumerate(data):
            yield from _errors(kind, f"{where}[]", _resolve(kind, items), item, (*path, i))
        return
    props = schema.get("properties")
    if not isinstance(props, dict) or not isinstance(data, dict) or "anyOf" in schema or "oneOf" in schema:
        for error in slow.iter_errors(data):
            error.path.extendleft(reversed(path))
            yield error
        return
    shallow = {k: v for k, v in schema.items() if k != "properties"}
    shallow["properties"] = {name: {} for name in props}
    outer = _slow_for(kind, f"{where}#shallow", shallow)
    for error in outer.iter_errors(data):
        error.path.extendleft(reversed(path))
        yield error
    for name, sub in props.items():
        if name in data:
            yield from _errors(kind, f"{where}/{name}", _resolve(kind, sub), data[name], (*path, name))


def check(doc: ParsedDocument, kind: str) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for error in _leaf_errors(schema_errors(doc.data, kind)):
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
