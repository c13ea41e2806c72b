"""What the server knows about documents: their kind, their validation, their project context.

Every document is validated by :func:`conductor.validation.validate_document`, the same call
the CLI makes, so the editor and ``conductor validate`` never disagree. A task or plan is
judged against its project's *effective* policy, which the engine API computes
(``api.project_context``): of the open ``policy.yaml`` buffer when the user is editing it
(unsaved changes count), else of the file on disk. The analysis of a policy document carries
its effective policy, merged once per version when a hover first asks for it (in a worker thread).
Files on disk are read through the API too: only regular files, never a FIFO or a device.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor.project.layout import find_project_root, root_of
from conductor.validation import Diagnostic, DocumentKind, ParsedDocument, ValidationContext, detect_kind, parse
from conductor.validation import validate_document as _validate
from conductor.validation.kinds import syntax_of

if TYPE_CHECKING:
    from conductor.engine import api
else:  # the engine API loads on first use (see conductor.lsp.lazy_api)
    from conductor.lsp.lazy_api import api


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
    _effective: list[api.EffectivePolicy | None] = field(default_factory=list, repr=False)

    @property
    def effective(self) -> api.EffectivePolicy | None:
        """A policy document's own effective policy (``None``: not a policy, or invalid).

        Merged on first use (a hover, in a worker thread), not with the diagnostics: the merge needs
        the policy models, which the first diagnostics of a starting server do without, and an edit
        of a large policy gets its diagnostics without waiting for a merge nobody asked for. Blocking."""
        if not self._effective:
            value = api.effective_of_document(self.doc, self.path) if self.kind == "policy" else None
            self._effective[:] = [value]
        return self._effective[0]


def read_disk(path: Path) -> tuple[str | None, Diagnostic | None]:
    """The text of a document on disk, or the diagnostic saying why it was not read (``None, None``: gone)."""
    try:
        return api.read_document(path), None
    except api.Unreadable as exc:
        return None, api.unreadable_diagnostic(exc)
    except OSError:
        return None, None


@dataclass
class DocumentStore:
    """Open-buffer texts are owned by pygls; this keeps analyses and project contexts.

    ``analyse`` may run in worker threads (it is thread-safe); the project context of a root
    is computed once per policy change, under a lock.
    """

    analyses: dict[str, Analysis] = field(default_factory=dict)
    contexts: dict[Path, api.ProjectContext] = field(default_factory=dict)
    roots: dict[Path, Path | None] = field(default_factory=dict)
    policy_buffers: dict[Path, str] = field(default_factory=dict)  # project root → open policy text
    generation: int = 0  # bumped whenever a project policy changes
    lock: threading.RLock = field(default_factory=threading.RLock)

    def project_root(self, path: Path) -> Path | None:
        inside = root_of(path)
        if inside is not None:
            return inside
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

    def project(self, root: Path | None) -> api.ProjectContext:
        """The project context of ``root`` (blocking: call it from a worker thread)."""
        if root is None:
            return api.project_context(None)
        with self.lock:
            cached = self.contexts.get(root)
            if cached is not None:
                return cached
            buffer = self.policy_buffers.get(root)
            done = next((a for a in list(self.analyses.values()) if a.kind == "policy" and a.text == buffer
                         and self.project_root(a.path) == root), None) if buffer is not None else None
            ctx = api.project_context(root, buffer, done.doc if done is not None else None)
            self.contexts[root] = ctx
            return ctx

    def cached(self, uri: str, text: str, version: int | None) -> Analysis | None:
        """The analysis of exactly this text and version under the current policy, if there is one."""
        found = self.analyses.get(uri)
        if (found is not None and found.version == version and found.generation == self.generation
                and found.text == text):
            return found
        return None

    def analyse(self, uri: str, path: Path, text: str, version: int | None,
                kind: DocumentKind | None = None, unreadable: Diagnostic | None = None) -> Analysis | None:
        """Validate ``text`` (cached per version and policy generation). Blocking: a worker thread calls it."""
        kind = kind or detect_kind(path)
        if kind is None:
            return None
        generation = self.generation
        cached = self.analyses.get(uri)
        if (cached is not None and cached.version == version and cached.generation == generation
                and cached.kind == kind and cached.text == text and unreadable is None):
            return cached
        started = time.perf_counter()
        if unreadable is not None:
            doc, diagnostics = parse("", syntax_of(path)), [unreadable]
            doc.diagnostics = [unreadable]
        elif kind == "policy":
            doc, diagnostics = _validate(text, kind, path=path, context=ValidationContext())
        else:
            context = dataclasses.replace(self.project(self.project_root(path)).context)
            doc, diagnostics = _validate(text, kind, path=path, context=context)
        analysis = Analysis(uri, path, kind, version, text, doc, diagnostics, time.perf_counter() - started,
                            generation)
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
