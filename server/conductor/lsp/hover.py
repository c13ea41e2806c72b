"""Hover: what a key means (from the published schema), and where a policy value comes from.

On a key or value: description, type, allowed values and an example, with ``$ref`` resolved.
On a policy key: also the effective value and the level, file and line it came from (the
analysis carries the document's effective policy; a hover merges nothing). On a step (a
task's ``task_id``, a plan step's ``id``): the engine's explanation of the step, else what
the document itself says about it.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import yaml

from conductor.lsp import schema_info
from conductor.lsp.documents import Analysis
from conductor.lsp.steps import document_scope, explain_markdown
from conductor.validation.document import JsonPath
from conductor.validation.partial import blocker, usable_part

if TYPE_CHECKING:
    from conductor.engine import api
else:  # the engine API loads on first use (see conductor.lsp.lazy_api)
    from conductor.lsp.lazy_api import api


def schema_path(path: JsonPath) -> JsonPath:
    return tuple(0 if isinstance(p, int) else p for p in path)


def show_value(value: Any, syntax: str) -> str:
    if syntax == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, default_flow_style=False).strip()


def key_markdown(kind: str, path: JsonPath, syntax: str) -> str | None:
    """Schema documentation of the key at ``path`` (``None`` when the schema does not know it)."""
    key_path = path
    while key_path and isinstance(key_path[-1], int):
        key_path = key_path[:-1]
    if not key_path:
        return None
    node = schema_info.at(kind, schema_path(key_path))
    if node is None:
        return None
    name = key_path[-1]
    out = [f"**`{name}`** — {schema_info.type_label(node)}"]
    if node.get("description"):
        out.append(str(node["description"]))
    if node.get("type_description"):
        out.append(str(node["type_description"]))
    values = schema_info.allowed_values(node)
    if values:
        out.append("Allowed values: " + ", ".join(f"`{json.dumps(v)}`" for v in values))
    props = node.get("properties")
    if isinstance(props, dict) and props:
        out.append("Keys: " + ", ".join(f"`{k}`" for k in props))
    sample = schema_info.example(node)
    if sample is not None:
        block = show_value({name: sample}, syntax)
        out.append(f"Example:\n```{syntax}\n{block}\n```")
    if "default" in node:
        out.append(f"Default: `{json.dumps(node['default'])}`")
    return "\n\n".join(out)


def effective_or_blocker(analysis: Analysis, path: JsonPath) -> str | None:
    """The effective value at ``path``, computed from every part of the policy without errors;
    where an error makes it unknowable, which error (all errors at once, never a blank hover).
    Blocking (a large policy's partial merge): the hover calls it in a worker thread."""
    if analysis.effective is not None:
        return effective_markdown(analysis.effective, path)
    usable, blocked = usable_part(analysis.doc, analysis.diagnostics)
    stop = blocker(blocked, path)
    if stop is not None:
        return f"_Effective value unavailable: line {stop.range.start_line + 1}: {stop.message}_"
    partial = api.effective_of_document(usable, analysis.path, partial=True) if usable is not None else None
    if partial is None:
        return "_Effective value unavailable: the policy has errors._"
    text = effective_markdown(partial, path)
    return f"{text}\n\n_(computed without the {len(blocked)} part(s) of the policy that have errors)_" if text else None


def _sourced_lines(items: list[api.Sourced]) -> list[str]:
    return [f"- `{json.dumps(s.to_json()['value'], ensure_ascii=False)}` — {s.origin}" for s in items]


def effective_markdown(policy: api.EffectivePolicy, path: JsonPath) -> str | None:
    """The effective value at ``path`` of a policy, with the origin of each part."""
    head = path[0] if path else None
    if head == "behavior":
        if len(path) >= 2 and isinstance(path[1], str) and path[1] in policy.limits:
            s = policy.limits[path[1]]
            return f"**Effective value:** `{s.value}` — from {s.origin}"
        rows = [f"- `{name}`: `{s.value}` — {s.origin}" for name, s in policy.limits.items()]
        return "**Effective limits:**\n" + "\n".join(rows)
    if head == "file_rules":
        if len(path) >= 2 and path[1] == "unprotect":
            items = policy.released_patterns
            title = "Released patterns"
        else:
            items = policy.protected_patterns
            title = "Effective protected patterns"
        return f"**{title}:**\n" + ("\n".join(_sourced_lines(items)) or "_none_")
    if head == "global_constraints":
        return "**Effective constraints:**\n" + ("\n".join(_sourced_lines(policy.global_constraints)) or "_none_")
    if head == "verification":
        rows = [f"- `{s.value.name}`: `{s.value.run}` — {s.origin}" for s in policy.verification]
        return "**Effective verification:**\n" + ("\n".join(rows) or "_none_")
    return None


async def hover_markdown(analysis: Analysis, line: int, character: int, root: Any = None) -> str | None:
    found = analysis.doc.path_at(line, character)
    if found is None:
        return None
    path, _on_key = found
    if not path:
        return None
    data = analysis.doc.data if isinstance(analysis.doc.data, dict) else {}
    if analysis.kind == "task" and path == ("task_id",) and isinstance(data.get("task_id"), str):
        plan_id, fork_id = document_scope(analysis)
        explained = await explain_markdown(root, data["task_id"], plan_id, fork_id)
        return explained or _task_markdown(data)
    if (analysis.kind == "plan" and len(path) == 3 and path[0] == "steps" and path[2] == "id"
            and isinstance(path[1], int)):
        steps = data.get("steps") or []
        step = steps[path[1]] if path[1] < len(steps) and isinstance(steps[path[1]], dict) else {}
        if isinstance(step.get("id"), str):
            plan_id, fork_id = document_scope(analysis)
            explained = await explain_markdown(root, step["id"], plan_id, fork_id) if plan_id else None
            return explained or _plan_step_markdown(step)
    text = key_markdown(analysis.kind, path, analysis.doc.syntax)
    if analysis.kind == "policy":
        extra = await asyncio.to_thread(effective_or_blocker, analysis, path)
        if extra:
            text = f"{text}\n\n---\n\n{extra}" if text else extra
    return text


def _task_markdown(task: dict[str, Any]) -> str:
    """What a task file says about its step (before any journal knows the step)."""
    out = [f"### {task.get('task_id')}" + (f" — {task.get('title')}" if task.get("title") else ""),
           str(task.get("instruction", ""))]
    files = task.get("allowed_files") or []
    if files:
        out.append("**Allowed files:** " + ", ".join(f"`{f}`" for f in files))
    conf = task.get("confidence") if isinstance(task.get("confidence"), dict) else {}
    if conf:
        out.append(f"**Confidence:** {conf.get('score')} ({str(conf.get('level', '')).upper()})")
        factors = conf.get("factors") or []
        if factors:
            rows = ["| factor | value | weight | why |", "|---|---|---|---|"]
            rows += [f"| {f.get('name')} | {f.get('value')} | {f.get('weight')} | {f.get('detail', '')} |"
                     for f in factors if isinstance(f, dict)]
            out.append("\n".join(rows))
    if task.get("constraints"):
        out.append("**Constraints:**\n" + "\n".join(f"- {c}" for c in task["constraints"]))
    return "\n\n".join(out)


def _plan_step_markdown(step: dict[str, Any]) -> str:
    out = [f"### {step.get('id')} — {step.get('title', '')}", str(step.get("instruction", ""))]
    if step.get("allowed_files"):
        out.append("**Allowed files:** " + ", ".join(f"`{f}`" for f in step["allowed_files"]))
    if step.get("depends_on"):
        out.append("**Depends on:** " + ", ".join(f"`{d}`" for d in step["depends_on"]))
    if step.get("estimated_confidence") is not None:
        out.append(f"**Planner's estimate:** {step['estimated_confidence']}")
    if step.get("rationale"):
        out.append(f"_Why:_ {step['rationale']}")
    return "\n\n".join(out)
