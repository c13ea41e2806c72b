"""Finds the published JSON Schema of a key or value by its JSON path ($ref/$defs resolved).

Hover and completion both ask "what does the schema say at this path": the description,
the type, allowed values, an example and, for a mapping, which keys it may hold.
"""

from __future__ import annotations

from typing import Any

from conductor.contract import schemas
from conductor.validation.document import JsonPath


def _resolve(root: dict[str, Any], node: Any) -> dict[str, Any]:
    """Follow ``$ref`` (merging the referring node's own description) and optional wrappers."""
    seen = 0
    out: dict[str, Any] = dict(node) if isinstance(node, dict) else {}
    while seen < 16:
        seen += 1
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
            merged = dict(target)
            merged.update({k: v for k, v in out.items() if k != "$ref"})
            if target.get("description") and out.get("description") and target["description"] != out["description"]:
                merged["type_description"] = target["description"]
            out = merged
            continue
        for combinator in ("anyOf", "oneOf", "allOf"):
            options = out.get(combinator)
            if isinstance(options, list):
                real = [o for o in options if o != {"type": "null"}]
                if len(real) == 1:
                    merged = dict(real[0])
                    merged.update({k: v for k, v in out.items() if k != combinator})
                    out = merged
                    break
        else:
            return out
    return out


def at(kind: str, path: JsonPath) -> dict[str, Any] | None:
    """The resolved schema of the node at ``path`` of a ``kind`` document, or ``None``."""
    root = schemas.load(kind)
    node = _resolve(root, root)
    for part in path:
        if isinstance(part, int):
            items = node.get("items")
            if not isinstance(items, dict):
                return None
            node = _resolve(root, items)
        else:
            props = node.get("properties") or {}
            if part in props:
                node = _resolve(root, props[part])
            elif isinstance(node.get("additionalProperties"), dict):
                node = _resolve(root, node["additionalProperties"])
            else:
                return None
    return node


def properties(kind: str, path: JsonPath) -> dict[str, dict[str, Any]]:
    """Keys the mapping at ``path`` may hold, each with its resolved schema."""
    node = at(kind, path)
    if not node:
        return {}
    root = schemas.load(kind)
    return {name: _resolve(root, sub) for name, sub in (node.get("properties") or {}).items()}


def required(kind: str, path: JsonPath) -> list[str]:
    node = at(kind, path) or {}
    return list(node.get("required") or [])


def allowed_values(node: dict[str, Any]) -> list[Any]:
    if "enum" in node:
        return list(node["enum"])
    if "const" in node:
        return [node["const"]]
    if node.get("type") == "boolean":
        return [True, False]
    return []


def type_label(node: dict[str, Any]) -> str:
    kind = node.get("type")
    names = {"integer": "integer", "number": "number", "string": "string", "array": "list",
             "object": "mapping", "boolean": "boolean", "null": "null"}
    if isinstance(kind, list):
        label = " or ".join(names.get(k, str(k)) for k in kind)
    elif kind == "array":
        items = node.get("items") or {}
        inner = items.get("type") or ("mapping" if "$ref" in items else "")
        label = f"list of {names.get(inner, inner)}" if inner else "list"
    elif kind:
        label = names.get(kind, str(kind))
    elif "enum" in node or "const" in node:
        label = "one of the values below"
    else:
        label = "mapping" if "properties" in node else "value"
    bounds = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in node:
            bounds.append(f"{sign} {node[key]}")
    if "pattern" in node:
        bounds.append(f"matches `{node['pattern']}`")
    return f"{label} ({', '.join(bounds)})" if bounds else label


def example(node: dict[str, Any]) -> Any:
    examples = node.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    if "default" in node:
        return node["default"]
    return None
