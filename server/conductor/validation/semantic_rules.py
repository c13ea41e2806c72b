"""Rules the JSON Schemas cannot express: globs, paths, policy contradictions, checksums.

Each rule runs on every document that parsed, also when other parts of it break the schema,
so that all errors are reported at once: a rule checks the shape of each node it reads and
skips a node of the wrong shape (the schema reports that one). Each diagnostic lands on the
exact entry at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, TypeGuard

from conductor.contract.checksum import task_checksum
from conductor.contract.defaults import ALWAYS_PROTECTED, DEFAULTS
from conductor.contract.globs import glob_problem, matches_protected, path_problem
from conductor.validation.diagnostics import Diagnostic, Severity
from conductor.validation.document import JsonPath, ParsedDocument


@dataclass
class ValidationContext:
    """What rules may know beyond the document: the project's protections and thresholds."""

    protected_patterns: tuple[str, ...] = ()
    approval_below: float = DEFAULTS["approval_below"]
    caution_below: float = DEFAULTS["caution_below"]
    path: PurePath | None = None


Rule = Callable[[ParsedDocument, ValidationContext], Iterator[Diagnostic]]
SECRET_WORDS = ("key", "token", "secret", "password")


def _diag(
    doc: ParsedDocument,
    path: JsonPath,
    code: str,
    message: str,
    *,
    on_key: bool = False,
    severity: Severity = Severity.ERROR,
    **data: Any,
) -> Diagnostic:
    rng = doc.key_range(path) if on_key else doc.value_range(path)
    return Diagnostic(rng, severity, code, message, dict(data))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _glob_entries(doc: ParsedDocument, kind: str, base: JsonPath, policy: Any) -> Iterator[Diagnostic]:
    if not isinstance(policy, dict):
        return
    rules = _dict(policy.get("file_rules"))
    for field in ("protected_patterns", "unprotect"):
        for i, pattern in enumerate(_list(rules.get(field))):
            if not isinstance(pattern, str):
                continue
            problem = glob_problem(pattern)
            if problem:
                yield _diag(
                    doc, (*base, "file_rules", field, i), f"{kind}/invalid-glob", f"invalid glob `{pattern}`: {problem}"
                )
    protected = [p for p in _list(rules.get("protected_patterns")) if isinstance(p, str)]
    unprotect = _list(rules.get("unprotect"))
    both = set(protected) & {p for p in unprotect if isinstance(p, str)}
    for pattern in sorted(both):
        i = unprotect.index(pattern)
        yield _diag(
            doc,
            (*base, "file_rules", "unprotect", i),
            f"{kind}/contradiction",
            f"`{pattern}` is both protected and unprotected at this level",
        )
    behavior = _dict(policy.get("behavior"))
    low, caution = behavior.get("approval_below"), behavior.get("caution_below")
    if _number(low) and _number(caution) and caution < low:
        yield _diag(
            doc,
            (*base, "behavior", "caution_below"),
            f"{kind}/contradiction",
            f"caution_below {caution} is below approval_below {low}; MEDIUM would be empty",
        )
    for i, name in enumerate(_list(behavior.get("allow_loosen"))):
        if isinstance(name, str) and name not in DEFAULTS and name != "verification":
            yield _diag(
                doc,
                (*base, "behavior", "allow_loosen", i),
                f"{kind}/unknown-limit",
                f"`{name}` is not a limit; choose from {', '.join([*DEFAULTS, 'verification'])}",
                severity=Severity.WARNING,
            )
    names: dict[str, int] = {}
    for i, command in enumerate(_list(policy.get("verification"))):
        name = command.get("name") if isinstance(command, dict) else None
        if not isinstance(name, str):
            continue
        if name in names:
            yield _diag(
                doc,
                (*base, "verification", i, "name"),
                f"{kind}/contradiction",
                f"verification `{command['name']}` is defined twice (also entry {names[command['name']] + 1})",
            )
        names.setdefault(name, i)


def _path_entries(
    doc: ParsedDocument,
    kind: str,
    base: JsonPath,
    entries: list[str],
    ctx: ValidationContext,
    protected: tuple[str, ...],
) -> Iterator[Diagnostic]:
    for i, entry in enumerate(entries):
        if not isinstance(entry, str):
            continue
        path = (*base, i)
        problem = path_problem(entry)
        if problem:
            yield _diag(doc, path, f"{kind}/{problem[0]}", problem[1], entry=entry)
            continue
        glob = glob_problem(entry)
        if glob:
            yield _diag(doc, path, f"{kind}/invalid-glob", f"invalid glob `{entry}`: {glob}")
            continue
        hit = matches_protected(entry, protected)
        if hit:
            yield _diag(
                doc,
                path,
                f"{kind}/path-protected",
                f"`{entry}` matches protected pattern `{hit}` of the effective policy; "
                "any change to it will fail the step",
                pattern=hit,
            )


def policy_rules(doc: ParsedDocument, ctx: ValidationContext) -> Iterator[Diagnostic]:
    yield from _glob_entries(doc, "policy", (), doc.data)


def task_rules(doc: ParsedDocument, ctx: ValidationContext) -> Iterator[Diagnostic]:
    task = _dict(doc.data)
    own = [p for p in _list(task.get("protected_patterns")) if isinstance(p, str)]
    protected = (*ctx.protected_patterns, *own)
    yield from _path_entries(doc, "task", ("allowed_files",), _list(task.get("allowed_files")), ctx, protected)
    for i, pattern in enumerate(_list(task.get("protected_patterns"))):
        problem = glob_problem(pattern) if isinstance(pattern, str) else None
        if problem:
            yield _diag(doc, ("protected_patterns", i), "task/invalid-glob", f"invalid glob `{pattern}`: {problem}")
    confidence = _dict(task.get("confidence"))
    score, level = confidence.get("score"), confidence.get("level")
    expected = None
    if _number(score) and 0 <= score <= 1 and isinstance(level, str):
        expected = "low" if score < ctx.approval_below else "medium" if score < ctx.caution_below else "high"
    if expected is not None and level != expected:
        yield _diag(
            doc,
            ("confidence", "level"),
            "task/confidence-mismatch",
            f"confidence level `{level}` does not match score {score}: it is `{expected}` "
            f"(low < {ctx.approval_below} ≤ medium < {ctx.caution_below} ≤ high)",
            expected=expected,
        )
    checksum = task_checksum(task) if isinstance(task.get("checksum"), str) else None
    if checksum is not None and task["checksum"] != checksum:
        yield _diag(
            doc,
            ("checksum",),
            "task/checksum-mismatch",
            "checksum does not match the task's content: the task was edited after Conductor "
            "wrote it, and will be refused",
            expected=checksum,
        )
    if ctx.path is not None and ctx.path.name.endswith(".task.json") and isinstance(task.get("task_id"), str):
        stem = ctx.path.name.removesuffix(".task.json")
        if stem != task["task_id"]:
            yield _diag(
                doc,
                ("task_id",),
                "task/id-mismatch",
                f"task_id `{task['task_id']}` does not match the file name `{stem}`",
            )


def result_rules(doc: ParsedDocument, ctx: ValidationContext) -> Iterator[Diagnostic]:
    result = _dict(doc.data)
    if ctx.path is not None and ctx.path.name.endswith(".result.json") and isinstance(result.get("task_id"), str):
        stem = ctx.path.name.removesuffix(".result.json")
        if stem != result["task_id"]:
            yield _diag(
                doc,
                ("task_id",),
                "result/task-mismatch",
                f"task_id `{result['task_id']}` does not match the file name `{stem}`",
            )
    if result.get("status") == "failed" and not result.get("error"):
        yield _diag(
            doc,
            ("status",),
            "result/missing-error",
            "a failed result should say why in `error`",
            severity=Severity.WARNING,
        )
    for i, entry in enumerate(_list(result.get("files_changed"))):
        problem = path_problem(entry) if isinstance(entry, str) else None
        if problem:
            yield _diag(doc, ("files_changed", i), f"result/{problem[0]}", problem[1])


def plan_rules(doc: ParsedDocument, ctx: ValidationContext) -> Iterator[Diagnostic]:
    plan = _dict(doc.data)
    yield from _glob_entries(doc, "plan", ("policy",), plan.get("policy"))
    plan_rules_ = _dict(_dict(plan.get("policy")).get("file_rules"))
    plan_protected = tuple(p for p in _list(plan_rules_.get("protected_patterns")) if isinstance(p, str))
    plan_released = {p for p in _list(plan_rules_.get("unprotect")) if isinstance(p, str)}
    ids: dict[str, int] = {}
    steps = [(i, s) for i, s in enumerate(_list(plan.get("steps")))
             if isinstance(s, dict) and isinstance(s.get("id"), str)]
    for i, step in steps:
        if step["id"] in ids:
            yield _diag(
                doc,
                ("steps", i, "id"),
                "plan/duplicate-step",
                f"step id `{step['id']}` is used twice (also step {ids[step['id']] + 1})",
            )
        ids.setdefault(step["id"], i)
        yield from _glob_entries(doc, "plan", ("steps", i, "policy"), step.get("policy"))
        # a pattern the plan or the step releases (`unprotect`) is a request, not an error: the runner holds
        # such steps for a person's approval and enforces the protection until then
        step_released = _list(_dict(_dict(step.get("policy")).get("file_rules")).get("unprotect"))
        released = (plan_released | {p for p in step_released if isinstance(p, str)}) - set(ALWAYS_PROTECTED)
        yield from _path_entries(
            doc,
            "plan",
            ("steps", i, "allowed_files"),
            _list(step.get("allowed_files")),
            ctx,
            tuple(p for p in (*ctx.protected_patterns, *plan_protected) if p not in released),
        )
    for i, step in steps:
        for j, dep in enumerate(_list(step.get("depends_on"))):
            if not isinstance(dep, str):
                continue
            if dep not in ids:
                yield _diag(
                    doc, ("steps", i, "depends_on", j), "plan/unknown-dependency", f"`{dep}` is not a step of this plan"
                )
            elif dep == step["id"]:
                yield _diag(doc, ("steps", i, "depends_on", j), "plan/dependency-cycle", f"`{dep}` depends on itself")
    cycle = _find_cycle(
        {s["id"]: [d for d in _list(s.get("depends_on")) if isinstance(d, str) and d in ids and d != s["id"]]
         for _, s in steps}
    )
    if cycle:
        i = ids[cycle[0]]
        yield _diag(
            doc,
            ("steps", i, "depends_on"),
            "plan/dependency-cycle",
            f"dependency cycle: {' → '.join([*cycle, cycle[0]])}",
            on_key=True,
        )


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, idx = stack.pop()
            if idx == 0:
                state[node] = 1
                path.append(node)
            deps = graph.get(node, [])
            if idx < len(deps):
                stack.append((node, idx + 1))
                nxt = deps[idx]
                if state.get(nxt) == 1:
                    return path[path.index(nxt) :]
                if not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def config_rules(doc: ParsedDocument, ctx: ValidationContext) -> Iterator[Diagnostic]:
    llm = _dict(_dict(doc.data).get("llm"))
    url = llm.get("base_url")
    if isinstance(url, str) and not url.startswith(("http://", "https://")):
        yield _diag(doc, ("llm", "base_url"), "config/invalid-url", f"`{url}` is not an http(s) URL")


def secret_keys(doc: ParsedDocument, kind: str) -> Iterator[Diagnostic]:
    """A key that looks like a secret gets a dedicated error; its value is never echoed."""
    for path, _ranges in doc.nodes.items():
        if (
            path
            and isinstance(path[-1], str)
            and path[-1] != "api_key_env"
            and any(w in path[-1].lower() for w in SECRET_WORDS)
        ):
            yield _diag(
                doc,
                path,
                f"{kind}/secret-in-file",
                f"`{path[-1]}` looks like a secret; secrets never go in Conductor files. Put the key "
                "in an environment variable and name it in llm.api_key_env",
                on_key=True,
            )


RULES: dict[str, Rule] = {
    "policy": policy_rules,
    "task": task_rules,
    "result": result_rules,
    "plan": plan_rules,
    "config": config_rules,
}
