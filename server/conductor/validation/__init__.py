"""One validation engine for every Conductor document, used by the CLI, the LSP and the engine.

``validate_document(text, kind)`` parses (with positions and hostile-input limits), checks
the published JSON Schema, then the semantic rules, and returns the parsed document with
its diagnostics. The CLI prints them like a compiler, the language server publishes them,
and the engine refuses to act on a document that has errors.

Owns parsing with positions, hostile-input limits, schema and semantic rules. It sits below
the policy engine: a task or plan is judged against the protections and thresholds its caller
passes in a :class:`ValidationContext` (``conductor.policy.validation_context`` builds one
from an effective policy); without one, the defaults apply.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from conductor.validation.diagnostics import Diagnostic, Range, Severity
from conductor.validation.document import ParsedDocument, parse
from conductor.validation.kinds import DocumentKind, detect_kind, syntax_of
from conductor.validation.semantic_rules import RULES, ValidationContext, secret_keys

__all__ = [
    "Diagnostic",
    "DocumentKind",
    "ParsedDocument",
    "Range",
    "Severity",
    "ValidationContext",
    "detect_kind",
    "validate_document",
    "validate_file",
]


def validate_document(
    text: str, kind: DocumentKind, *, path: str | PurePath | None = None, context: ValidationContext | None = None
) -> tuple[ParsedDocument, list[Diagnostic]]:
    """Parse and check ``text`` as a ``kind`` document; never raises on bad input."""
    from conductor.validation import schema_rules  # lazy: jsonschema costs ~0.3 s; `conductor --version` needs none

    syntax = syntax_of(path) if path is not None else ("yaml" if kind in ("policy", "config") else "json")
    doc = parse(text, syntax)
    diagnostics = list(doc.diagnostics)
    if doc.data is not None and isinstance(doc.data, dict) and not doc.diagnostics:
        secrets = list(secret_keys(doc, kind)) if kind in ("policy", "config") else []
        diagnostics.extend(secrets)
        hidden = {d.range for d in secrets}
        schema_diags = [d for d in schema_rules.check(doc, kind) if d.range not in hidden]
        diagnostics.extend(schema_diags)
        if kind in RULES:
            # Semantic rules run on every node that parsed, also when other nodes break the
            # schema: the user sees all errors at once. A node the schema already flags is
            # not reported twice.
            ctx = context or ValidationContext()
            if path is not None:
                ctx.path = PurePath(path)
            flagged = {d.range for d in schema_diags}
            diagnostics.extend(d for d in RULES[kind](doc, ctx) if d.range not in flagged)
    doc.ok = doc.data is not None and not any(d.severity == Severity.ERROR for d in diagnostics)
    diagnostics.sort(key=lambda d: (d.range, d.code))
    return doc, diagnostics


def validate_file(
    path: str | Path, kind: DocumentKind | None = None, context: ValidationContext | None = None
) -> list[Diagnostic]:
    """Validate a file on disk (its kind from its name unless given)."""
    p = Path(path)
    kind = kind or detect_kind(p)
    if kind is None:
        raise ValueError(f"{p}: not a Conductor document (policy, config, plan, task, result, provenance)")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        if "\ufffd" not in text[:8192]:
            text = "\ufffd" + text
    return validate_document(text, kind, path=p, context=context)[1]
