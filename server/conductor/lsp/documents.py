"""What the server knows about documents: their kind, their validation, their project context.

Every document is validated by :func:`conductor.validation.validate_document`, the same call
the CLI makes, so the editor and ``conductor validate`` never disagree. A task or plan is
judged against its project's *effective* policy: the open ``policy.yaml`` buffer when the
user is editing it (unsaved changes count), else the file on disk.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conductor.policy import EffectivePolicy, merge
from conductor.policy.levels import PolicyLevel
from conductor.project.layout import CONDUCTOR_DIR, find_project_root
from conductor.validation import (
    Diagnostic,
    DocumentKind,
    ParsedDocument,
    ValidationContext,
    detect_kind,
    validate_document,
)
from conductor.validation.semantic_rules import ValidationContext as _Ctx

POLICY_DISPLAY = ".conductor/policy.yaml"


@dataclass
class Analysis:
    """One validation of one version of a document."""

    uri: str
    path: Path
    kind: DocumentKind
    version: int | None
    text: str
    doc: ParsedDocument
    diagnostics: list[Diagnostic]
    cost: float
    generation: int = 0


@dataclass
class ProjectContext:
    """The effective project policy of one project root, and the context validation needs."""

    context: ValidationContext
    policy: EffectivePolicy | None
    source: str  # "buffer" | "disk" | "default"


def read_text(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        return text if "\ufffd" in text[:8192] else "\ufffd" + text


def effective_from_text(text: str, path: Path | None) -> EffectivePolicy | None:
    """The effective project policy of a policy text, or ``None`` when it is not valid."""
    doc, diagnostics = validate_document(text, "policy", path=path, context=_Ctx())
    if not doc.ok or any(d.severity == 1 for d in diagnostics):
        return None
    try:
        return merge([PolicyLevel.from_document(doc, "project", POLICY_DISPLAY)])
    except Exception:  # the schema check above catches what the model would refuse
        return None


def context_of(policy: EffectivePolicy | None) -> ValidationContext:
    if policy is None:
        return ValidationContext()
    return ValidationContext(
        protected_patterns=tuple(policy.protected),
        approval_below=policy.limit("approval_below"),
        caution_below=policy.limit("caution_below"),
    )


@dataclass
class DocumentStore:
    """Open-buffer texts are owned by pygls; this keeps analyses and project contexts."""

    analyses: dict[str, Analysis] = field(default_factory=dict)
    contexts: dict[Path, ProjectContext] = field(default_factory=dict)
    roots: dict[Path, Path | None] = field(default_factory=dict)
    policy_buffers: dict[Path, str] = field(default_factory=dict)  # project root → open policy text
    generation: int = 0  # bumped whenever a project policy changes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def project_root(self, path: Path) -> Path | None:
        parts = path.parts
        if CONDUCTOR_DIR in parts:
            index = len(parts) - 1 - parts[::-1].index(CONDUCTOR_DIR)
            return Path(*parts[:index]) if index else None
        folder = path.parent
        if folder not in self.roots:
            self.roots[folder] = find_project_root(folder) if folder.exists() else None
        return self.roots[folder]

    def policy_changed(self, root: Path | None, text: str | None = None, closed: bool = False) -> None:
        """A project's policy changed (buffer edit, save, disk write, close)."""
        with self.lock:
            if root is not None:
                if text is not None:
                    self.policy_buffers[root] = text
                elif closed:
                    self.policy_buffers.pop(root, None)
                self.contexts.pop(root, None)
            else:
                self.contexts.clear()
            self.generation += 1

    def project(self, root: Path | None) -> ProjectContext:
        if root is None:
            return ProjectContext(ValidationContext(), None, "default")
        with self.lock:
            cached = self.contexts.get(root)
            if cached is not None:
                return cached
            policy_path = root / CONDUCTOR_DIR / "policy.yaml"
            buffer = self.policy_buffers.get(root)
            if buffer is not None:
                policy, source = effective_from_text(buffer, policy_path), "buffer"
            else:
                text = read_text(policy_path)
                policy = effective_from_text(text, policy_path) if text is not None else merge([])
                source = "disk" if text is not None else "default"
            ctx = ProjectContext(context_of(policy), policy, source)
            self.contexts[root] = ctx
            return ctx

    def analyse(self, uri: str, path: Path, text: str, version: int | None,
                kind: DocumentKind | None = None) -> Analysis | None:
        """Validate ``text`` (cached per version and policy generation)."""
        kind = kind or detect_kind(path)
        if kind is None:
            return None
        generation = self.generation
        cached = self.analyses.get(uri)
        if (cached is not None and cached.version == version and cached.generation == generation
                and cached.kind == kind and cached.text == text):
            return cached
        started = time.perf_counter()
        if kind == "policy":
            context: ValidationContext = _Ctx()
        else:
            context = dataclasses.replace(self.project(self.project_root(path)).context)
        doc, diagnostics = validate_document(text, kind, path=path, context=context)
        analysis = Analysis(uri, path, kind, version, text, doc, diagnostics,
                            time.perf_counter() - started, generation)
        self.analyses[uri] = analysis
        return analysis

    def forget(self, uri: str) -> None:
        self.analyses.pop(uri, None)


def to_json_safe(value: Any) -> Any:
    """Plain JSON of a value (dataclasses and pydantic models included)."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value
