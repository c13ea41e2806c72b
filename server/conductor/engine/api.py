"""The engine API: every operation a door (CLI, language server, MCP server) can ask for, typed.

The adapters call these functions and only format the results; none of them holds business
logic or imports anything below this module except ``contract``, ``validation`` and
``project.layout`` (an import-linter contract in ``make lint`` keeps it so). Results are
typed (pydantic views with ``to_json()``, or the domain's own dataclasses with ``to_json()``);
every refusal is an :class:`EngineError` with a ``code`` (:mod:`conductor.engine.errors`),
domain exceptions are translated here, at the door.

Functions that do file-system walks or run the engine are plain blocking calls: the language
server runs them in worker threads, and those that walk take a ``cancel`` event.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import importlib
import os
import shutil
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from conductor.engine.errors import (
    Cancelled,
    Conflict,
    DiskFull,
    EngineError,
    InvalidRequest,
    NoSuchPlan,
    NoSuchStep,
    NotAProject,
    NotFound,
    PlanFailed,
    PlanLockedError,
    PolicyInvalid,
    ProjectError,
    QueueRefused,
    Unreadable,
)
from conductor.engine.lock import PlanLocked, describe, plan_holder
from conductor.engine.report import STATE_MARK, status_text
from conductor.project import files as _files
from conductor.project.layout import (
    CONDUCTOR_DIR,
    SKIP_DIRS,
    ProjectLayout,
    bare_id,
    find_project_root,
    new_plan_id,
    plan_ref,
    root_of,
)
from conductor.storage.errors import DiskFull as StorageFull
from conductor.storage.errors import is_disk_full
from conductor.validation import (
    Diagnostic,
    DocumentKind,
    ParsedDocument,
    ValidationContext,
    detect_kind,
    validate_document,
)
from conductor.validation.cache import ValidationCache
from conductor.validation.diagnostics import START, Severity
from conductor.validation.limits import MAX_BYTES

if TYPE_CHECKING:
    from conductor.contract.config import Config
    from conductor.contract.plan import Plan
    from conductor.engine.door_views import (
        Approval,
        ClaimedTask,
        Explanation,
        PlanDocument,
        Readiness,
        ReplayView,
        Verdict,
    )
    from conductor.engine.runner import RunSummary
    from conductor.engine.views import (
        PlanView,
        StatusView,
        StepView,
        fork_steps,
        plan_view,
        policy_drift,
        step_payload,
    )
    from conductor.handoff.queue import Submitted
    from conductor.journal.events import Event, JournalError
    from conductor.journal.journal import Journal
    from conductor.journal.projection import PlanState, replay
    from conductor.policy import (
        EffectivePolicy,
        PolicyError,
        Sourced,
        level_from_text,
        load_policy_file,
        merge,
        validation_context,
    )
    from conductor.policy.levels import PolicyLevel, load_plan_levels
    from conductor.project.init import InitReport
    from conductor.provenance.verify import VerifyReport

__all__ = [
    "STATE_MARK", "Conflict", "EffectivePolicy", "EngineError", "InitReport", "InvalidRequest", "NoSuchPlan",
    "NoSuchStep", "NotAProject", "NotFound", "PlanFailed", "PlanView", "PolicyInvalid", "ProjectError",
    "QueueRefused", "Sourced", "StatusView", "StepView", "Unreadable", "find_project_root", "new_plan_id",
    "plan_ref", "status_text",
]

_HEAVY = {
    "conductor.contract.plan": ("Plan",),
    "conductor.engine.door_views": ("Approval", "ClaimedTask", "Explanation", "PlanDocument", "Readiness", "ReplayView",
                                    "Verdict"),
    "conductor.engine.views": ("PlanView", "StatusView", "StepView", "View", "fork_steps", "plan_view", "policy_drift",
                               "step_payload"),
    "conductor.journal.events": ("Event", "JournalError"),
    "conductor.journal.journal": ("Journal",),
    "conductor.journal.projection": ("PlanState", "replay"),
    "conductor.policy": ("EffectivePolicy", "PolicyError", "Sourced", "level_from_text", "load_policy_file", "merge",
                         "validation_context"),
    "conductor.policy.levels": ("PolicyLevel", "load_plan_levels"),
}
"""The engine's models, journal and policy merge: what most calls need and a door's start does not.
They are imported on the first call that needs them (``_load``), not with this module: `validate`
of unchanged files, the first diagnostics of a document and `--version` run without pydantic."""
_HEAVY_NAMES = {name: module for module, names in _HEAVY.items() for name in names}
_loaded = False


def _load() -> None:
    """Bind the names of :data:`_HEAVY` in this module (once; cheap after)."""
    global _loaded
    if _loaded:
        return
    for module, names in _HEAVY.items():
        imported = importlib.import_module(module)
        globals().update({name: getattr(imported, name) for name in names})
    _loaded = True


P = ParamSpec("P")
R = TypeVar("R")
Cancel = threading.Event | asyncio.Event | None
Path_ = str | os.PathLike[str]


def _disk_full(exc: OSError, then: str | None = None) -> DiskFull:
    """One line naming the path and the space (``storage.errors.DiskFull``'s words); ``then`` replaces
    the advice to resume."""
    text = str(exc if isinstance(exc, StorageFull) else StorageFull(exc.filename or ".", code=exc.errno or 0))
    if then is not None:
        text = text.split(": free some space", 1)[0] + f": free some space, then {then}"
    return DiskFull(text)


def _translate(exc: BaseException) -> EngineError | None:
    """The door's error for a domain exception, or ``None`` to let it through."""
    if isinstance(exc, EngineError):
        return exc
    _load()
    if isinstance(exc, PolicyError):
        return PolicyInvalid(str(exc), file=exc.file, diagnostics=exc.diagnostics)
    if isinstance(exc, _files.Unreadable):
        return Unreadable(str(exc), path=exc.path)
    if isinstance(exc, JournalError):
        return ProjectError(str(exc), code="journal/damaged")
    if isinstance(exc, PlanLocked):
        return PlanLockedError(str(exc), holder=exc.holder)
    if is_disk_full(exc):
        return _disk_full(exc)  # type: ignore[arg-type]
    return None


def door(fn: Callable[P, R]) -> Callable[P, R]:
    """Translate domain exceptions into :class:`EngineError` at the API's edge (sync and async);
    the engine's models, journal and policy merge are loaded first (:func:`_load`)."""
    return _door(fn, load=True)


def light_door(fn: Callable[P, R]) -> Callable[P, R]:
    """:func:`door` for a call that needs none of :data:`_HEAVY` (reading and validating documents)."""
    return _door(fn, load=False)


def _door(fn: Callable[P, R], load: bool) -> Callable[P, R]:
    if asyncio.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            if load:
                _load()
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                translated = _translate(exc)
                if translated is None or translated is exc:
                    raise
                raise translated from exc
        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if load:
            _load()
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            translated = _translate(exc)
            if translated is None or translated is exc:
                raise
            raise translated from exc
    return run


def _check_cancel(cancel: Cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


# --------------------------------------------------------------------------- the project


def project_root(start: Path_ | None = None) -> Path:
    root = find_project_root(start)
    if root is None:
        where = Path(start or Path.cwd()).resolve()
        raise NotAProject(f"{where}: not inside a Conductor project (no .conductor folder); run `conductor init .`")
    return root


def _layout(root: Path_ | None) -> ProjectLayout:
    return ProjectLayout.at(project_root(root))


@door
def init_project(path: Path_ = ".", name: str | None = None) -> InitReport:
    """Create (or complete) a project: ``.conductor/`` files, ``.gitignore`` entries, agent instructions,
    and the project key, pinned in ``.conductor/trust.json`` (to be committed and reviewed)."""
    from conductor.project.init import init_project as _init_project  # lazy: only `init` writes a project
    from conductor.provenance.trust import TrustError, project_key_fingerprint  # lazy: cryptography (~30 ms)

    try:
        report = _init_project(Path(path), name)
        layout = ProjectLayout.at(report.root)
        pinned = layout.trust_file.exists()
        project_key_fingerprint(layout)
        (report.kept if pinned else report.created).append(layout.relative(layout.trust_file))
        return report
    except TrustError as exc:
        raise ProjectError(str(exc), code="key/untrusted") from exc
    except OSError as exc:
        if is_disk_full(exc):
            raise _disk_full(exc, "run `conductor init` again") from exc
        if _translate(exc) is not None:
            raise
        raise ProjectError(f"cannot create the project at {Path(path).resolve()}: "
                           f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")) from exc


@door
def project_config(root: Path_ | None = None) -> Config:
    """The project's ``config.yaml`` (defaults when it has none)."""
    from conductor.engine.config import load_config  # lazy: the config model costs ~0.1 s; diagnostics need none

    return load_config(_layout(root))



@door
def readiness(root: Path_, mode: str | None = None) -> Readiness:
    """The project's mode (``mode`` overrides the configuration, as an editor setting does) and key presence."""
    from conductor.contract.config import Config  # lazy: the config model costs ~0.1 s; diagnostics need none
    from conductor.engine.config import load_config  # lazy: as above

    layout = ProjectLayout.at(root)
    try:
        config = load_config(layout)
    except EngineError:
        config = Config()  # an invalid config.yaml gets its own diagnostics
    env = config.llm.api_key_env
    return Readiness(root=str(layout.root), mode=mode or config.mode, api_key_env=env,
                     api_key_set=bool(os.environ.get(env) or os.environ.get("CONDUCTOR_API_KEY")))


def mcp_client_config(start: Path_ | None = None) -> dict[str, Any]:
    """The ``{"mcpServers": …}`` snippet an IDE keeps per user, pointing at this project when in one."""
    from conductor.project.mcp_config import mcp_servers_config  # lazy: only the MCP door needs it

    found = find_project_root(start)
    args = ["mcp", *(["--root", str(found)] if found is not None else [])]
    return mcp_servers_config(shutil.which("conductor") or "conductor", args)


# --------------------------------------------------------------------------- documents


@light_door
def read_document(path: Path_) -> str:
    """The text of a Conductor document on disk: a regular file of at most 2 MiB (inside
    ``.conductor/`` a symlink is refused); :class:`Unreadable` otherwise, never a hang."""
    return _files.read_text(path, MAX_BYTES)


@dataclass(frozen=True)
class ProjectContext:
    """The effective project policy of one project, and the context validation judges tasks and plans by."""

    root: Path | None
    source: Literal["buffer", "disk", "default"]
    policy: EffectivePolicy | None  # None when the policy is invalid
    context: ValidationContext
    error: str | None = None


@door
def project_context(root: Path_ | None, policy_text: str | None = None,
                    parsed: ParsedDocument | None = None) -> ProjectContext:
    """The effective project policy: of ``policy_text`` (an unsaved editor buffer) when given,
    else of ``.conductor/policy.yaml`` on disk, else the defaults. An invalid policy gives
    ``policy=None`` and the default validation context (the policy gets its own diagnostics).
    ``parsed`` is the buffer already validated (saves validating a large policy twice)."""
    if root is None:
        return ProjectContext(root=None, source="default", policy=merge([]), context=ValidationContext())
    layout = ProjectLayout.at(root)
    source: Literal["buffer", "disk", "default"] = "buffer" if policy_text is not None else "disk"
    try:
        if parsed is not None:
            if not parsed.ok:
                raise PolicyError(layout.policy_display, [d for d in parsed.diagnostics if d.severity == 1])
            levels = [PolicyLevel.from_document(parsed, "project", layout.policy_display)]
            source = "buffer"
        elif policy_text is not None:
            levels = [level_from_text(policy_text, layout.policy_display, path=layout.policy_file)]
        else:
            level = load_policy_file(layout.policy_file, layout.policy_display)
            levels = [level] if level else []
            source = "disk" if level else "default"
    except PolicyError as exc:
        return ProjectContext(root=layout.root, source=source, policy=None, context=ValidationContext(), error=str(exc))
    policy = merge(levels)
    return ProjectContext(root=layout.root, source=source, policy=policy, context=validation_context(policy))


def effective_of_document(document: ParsedDocument, path: Path_ | None = None, *,
                          partial: bool = False) -> EffectivePolicy | None:
    """The effective policy a validated policy document sets alone (hover on an open policy), or ``None``
    when it has errors. With ``partial``, ``document`` is the part of a policy without errors
    (``validation.partial.usable_part``) and the effective policy of that part is given."""
    if not document.ok and not partial:
        return None
    _load()
    root = root_of(path) if path is not None else None
    display = ProjectLayout.at(root).policy_display if root is not None else str(path or "policy.yaml")
    try:
        return merge([PolicyLevel.from_document(document, "project", display)])
    except ValueError:  # pydantic's ValidationError: a part the schema check did not cover
        return None


@dataclass
class FileReport:
    """One file of ``validate``: its diagnostics, or why it was not read."""

    path: Path
    kind: DocumentKind | None
    diagnostics: list[Diagnostic]
    error: str | None = None

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == 1) + (1 if self.error else 0)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == 2)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": str(self.path), "kind": self.kind,
                               "diagnostics": [d.to_json() for d in self.diagnostics]}
        if self.error is not None:
            out["error"] = self.error
        return out


def conductor_files(paths: Iterable[Path_], cancel: Cancel = None, limit: int | None = None) -> list[tuple[Path, bool]]:
    """Files to validate under ``paths``: (path, named explicitly). Folders in ``SKIP_DIRS`` are not entered."""
    found: list[tuple[Path, bool]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                _check_cancel(cancel)
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
                for name in sorted(filenames):
                    candidate = os.path.join(dirpath, name)
                    if detect_kind(candidate) is not None:
                        found.append((Path(candidate), False))
                        if limit is not None and len(found) >= limit:
                            return found
        else:
            found.append((p, True))
    return found


@light_door
def validate_paths(paths: Iterable[Path_], cancel: Cancel = None, *, use_cache: bool = True) -> list[FileReport]:
    """Validate every Conductor document under ``paths`` (``conductor validate``).

    Tasks and plans are judged against their project's effective policy. Only regular files
    are read (a FIFO or a device is reported, never opened for reading). ``cancel`` stops the
    walk between files (:class:`Cancelled`). A machine-written document (task, result, provenance,
    verdict, plan) validated before with the same bytes, path, project policy and rules is not
    validated again (``validation.cache``; ``use_cache=False`` does every file anew); the policy and
    the configuration, written by hand, are always validated.
    """
    contexts: dict[Path | None, ValidationContext] = {}
    caches: dict[Path | None, ValidationCache] = {}
    roots: dict[Path, Path | None] = {}
    out: list[FileReport] = []
    try:
        for path, explicit in conductor_files(paths, cancel):
            _check_cancel(cancel)
            report = _validate_one(path, explicit, roots, contexts, caches if use_cache else None)
            if report is not None:
                out.append(report)
    finally:
        for cache in caches.values():
            cache.save()
    return out


def _validate_one(path: Path, explicit: bool, roots: dict[Path, Path | None],
                  contexts: dict[Path | None, ValidationContext],
                  caches: dict[Path | None, ValidationCache] | None) -> FileReport | None:
    """One file of :func:`validate_paths` (``None``: nothing to report). An unchanged document (same
    bytes, path, kind, project policy and rules) takes its diagnostics from the cache."""
    kind = detect_kind(path)
    report = FileReport(path, kind, [])
    if not os.path.lexists(path):
        report.error = "no such file or folder"
    elif kind is None:
        report.error = "not a Conductor document (policy, config, plan, task, result, provenance)"
    else:
        try:
            text = _files.read_text(path, MAX_BYTES)
        except _files.Unreadable as exc:
            report.diagnostics = [unreadable_diagnostic(exc)]
            text = None
        except OSError as exc:
            report.error = f"cannot read: {exc.strerror or exc}"
            text = None
        if text is not None:
            if path.parent not in roots:
                roots[path.parent] = find_project_root(path.parent)
            root = roots[path.parent]
            judged = kind in ("task", "plan")  # against the project's effective policy
            cache = None
            if caches is not None and kind not in ("policy", "config"):  # hand-written: few, always checked
                if root not in caches:
                    caches[root] = ValidationCache.for_project(root)
                cache = caches[root]
            # the context is a function of the project's policy file: its bytes stand for it in the key,
            # so a file found in the cache needs no policy merge at all
            key = cache.key(text, kind, path.absolute(), cache.policy_key(root) if judged else "-") if cache else ""
            cached = cache.get(key) if cache is not None else None
            if cached is not None:
                report.diagnostics = cached
            else:
                context = None
                if judged:
                    if root not in contexts:
                        contexts[root] = project_context(root).context
                    context = contexts[root]
                report.diagnostics = validate_document(text, kind, path=path, context=context)[1]
                if cache is not None:
                    cache.put(key, report.diagnostics)
    if explicit or report.diagnostics or report.error or kind is not None:
        return report
    return None


def unreadable_diagnostic(exc: BaseException) -> Diagnostic:
    """The diagnostic of a document that was not read: ``file/too-large`` or ``file/not-regular``."""
    if isinstance(exc, Unreadable):
        exc = exc.__cause__ if isinstance(exc.__cause__, _files.Unreadable) else exc
    if isinstance(exc, _files.Unreadable) and exc.kind == "too-large":
        try:
            size = os.stat(exc.path).st_size
        except OSError:
            size = MAX_BYTES + 1
        return Diagnostic(START, Severity.ERROR, "file/too-large",
                          f"file is {size / 1_048_576:.1f} MiB; Conductor documents are limited to "
                          f"{MAX_BYTES // 1_048_576} MiB and this one was not parsed", {"size": size})
    reason = exc.reason if isinstance(exc, _files.Unreadable) else str(exc)
    return Diagnostic(START, Severity.ERROR, "file/not-regular", f"not read: the file {reason}")


def format_diagnostic(path: str, diag: dict[str, Any] | Diagnostic) -> str:
    """``path:line:col: severity code message`` (1-based), as compilers print."""
    d = diag.to_json() if isinstance(diag, Diagnostic) else diag
    start = d["range"]["start"]
    return f"{path}:{start['line'] + 1}:{start['character'] + 1}: {d['severity']} {d['code']} {d['message']}"


# --------------------------------------------------------------------------- policy


@door
def effective_policy(root: Path_ | None = None, *, plan_id: str | None = None, step_id: str | None = None,
                     fork_id: str | None = None) -> EffectivePolicy:
    """The effective policy: the project's, with a plan's and a step's levels merged over it.

    The plan level comes from the fork's plan document (``fork_id``; by default the merged
    fork, else ``main``, else the first fork that has one).
    """
    layout = _layout(root)
    project = load_policy_file(layout.policy_file, display=layout.policy_display)
    levels = [project] if project else []
    if plan_id:
        document = _plan_file(layout, plan_id, fork_id)
        display = layout.relative(document.path)
        try:
            levels.extend(load_plan_levels(document.path, display, step_id))
        except KeyError:
            raise NoSuchStep(f"{display}: plan {document.plan_id} (fork {document.fork_id}) has no step "
                             f"{step_id!r}") from None
    elif step_id:
        raise InvalidRequest("a step's policy needs its plan: give the plan id too (`--plan`)")
    return merge(levels)


# --------------------------------------------------------------------------- plans


def plan_ids(root: Path_ | None = None) -> list[str]:
    """Plans of the project, oldest first."""
    return _layout(root).plan_ids()


def resolve_plan(root: Path_ | None, plan_id: str | None) -> str:
    """``plan_id`` if it exists (a unique prefix will do), or the latest plan when ``None``."""
    layout = _layout(root)
    ids = layout.plan_ids()
    if plan_id is None:
        if not ids:
            raise NoSuchPlan(f"{layout.relative(layout.plans_dir) if layout.plans_dir.exists() else CONDUCTOR_DIR}: "
                             'no plans yet; start one with `conductor build "<goal>"`')
        return ids[-1]
    plan_id = bare_id(plan_id, "plan_")
    if plan_id not in ids:
        matches = [i for i in ids if i.startswith(plan_id)]
        if len(matches) == 1:
            return matches[0]
        raise NoSuchPlan(f"no plan {plan_id!r} in {layout.plans_dir}" + (f" (known: {', '.join(ids)})" if ids else ""))
    return plan_id


def _state(layout: ProjectLayout, plan_id: str, to_seq: int | None = None, *,
           timelines: Collection[str] | None = None) -> PlanState:
    _load()
    return replay(Journal.for_plan(layout, plan_id), to_seq, timelines=timelines)


@door
def plan_state(root: Path_ | None, plan_id: str | None = None, to_seq: int | None = None) -> PlanState:
    """The projection of a plan's journal (as of event ``to_seq``)."""
    layout = _layout(root)
    return _state(layout, resolve_plan(layout.root, plan_id), to_seq)


@door
def status(root: Path_ | None = None, plan_id: str | None = None) -> StatusView:
    """Plans → forks → steps with their state, confidence and files (``conductor status``)."""
    layout = _layout(root)
    ids = [resolve_plan(layout.root, plan_id)] if plan_id else layout.plan_ids()
    plans = []
    for pid in ids:
        journal = Journal.for_plan(layout, pid)
        state = replay(journal, timelines=())  # status shows no timelines: the checkpoint's summary part suffices
        drift = policy_drift(layout, journal) if state.status != "finished" else None
        holder = plan_holder(layout, pid)
        held = None if holder is None else {**holder, "text": describe(holder)}
        plans.append(plan_view(layout, pid, state, policy_changed=drift, held_by=held))
    return StatusView(plans=plans)


@door
def steps(root: Path_ | None = None, plan_id: str | None = None) -> list[StepView]:
    """Every step of every fork of a plan (of every plan when ``plan_id`` is ``None``)."""
    layout = _layout(root)
    ids = [resolve_plan(layout.root, plan_id)] if plan_id else layout.plan_ids()
    out: list[StepView] = []
    for pid in ids:
        state = _state(layout, pid, timelines=())
        out.extend(step for fork_id in state.forks for step in fork_steps(layout, pid, fork_id, state))
    return out



@dataclass(frozen=True)
class _PlanFile:
    plan_id: str
    fork_id: str
    path: Path


def _plan_file(layout: ProjectLayout, plan_id: str, fork_id: str | None) -> _PlanFile:
    """Which fork's plan file (not parsed): the named fork, else the merged one, ``main``, the first."""
    pid = resolve_plan(layout.root, plan_id)
    stored = layout.plan_files(pid)
    if fork_id is not None:
        fid = bare_id(fork_id, "fork_")
        if fid not in stored:
            raise NotFound(f"plan {pid} has no plan document for fork {fid!r}"
                           + (f" (known: {', '.join(stored)})" if stored else ""), code="plan/no-document")
    else:
        if not stored:
            raise NotFound(f"plan {pid} has no plan document yet (planning has not finished)",
                           code="plan/no-document")
        merged = (_state(layout, pid).merged or {}).get("fork_id")
        fid = merged if merged in stored else "main" if "main" in stored else next(iter(stored))
    return _PlanFile(pid, fid, stored[fid])


@door
def plan_document(root: Path_ | None, plan_id: str | None = None, fork_id: str | None = None) -> PlanDocument:
    """The plan document of a plan's fork (default: the merged fork, else ``main``, else the first)."""
    layout = _layout(root)
    found = _plan_file(layout, resolve_plan(layout.root, plan_id), fork_id)
    text = _files.read_text(found.path, MAX_BYTES)
    doc, diagnostics = validate_document(text, "plan", path=found.path, context=ValidationContext())
    errors = [d for d in diagnostics if d.severity == 1]
    if errors or not doc.ok:
        raise ProjectError(f"invalid plan document: {errors[0].format(layout.relative(found.path))}"
                           if errors else f"{found.path}: not a plan document", code="plan/invalid")
    return PlanDocument(plan_id=found.plan_id, fork_id=found.fork_id, path=found.path,
                        plan=Plan.model_validate(doc.data))



@door
def explain_step(root: Path_ | None, step_id: str, plan_id: str | None = None,
                 fork_id: str | None = None) -> Explanation:
    """Why a step was planned, its confidence factors, what happened, the evidence, what to do."""
    layout = _layout(root)
    state = _state(layout, resolve_plan(layout.root, plan_id), timelines=(step_id,))  # only this step's timeline
    step = state.find_step(step_id, fork_id)
    if step is None:
        known = sorted({sid for f in state.forks.values() for sid in f.steps})
        raise NoSuchStep(f"plan {state.plan_id} has no step {step_id!r}" + (f" in fork {fork_id}" if fork_id else "")
                         + (f" (known: {', '.join(known)})" if known else ""))
    from conductor.journal.explain import explain_step as _explain  # lazy: only `explain` needs it

    explanation = _explain(state, step_id, fork_id)
    return Explanation(plan_id=state.plan_id, step_id=step_id, fork_id=step.fork_id, markdown=explanation.markdown,
                       data=explanation.data)


@door
def list_events(root: Path_ | None = None, plan_id: str | None = None, *, types: list[str] | None = None,
                fork_id: str | None = None, step_id: str | None = None, all_plans: bool = False) -> list[Event]:
    """The plan's journal events (every plan's with ``all_plans``), optionally filtered."""
    layout = _layout(root)
    ids = layout.plan_ids() if all_plans else [resolve_plan(layout.root, plan_id)]
    return [event for pid in ids
            for event in Journal.for_plan(layout, pid).events(types=types or None, fork_id=fork_id, step_id=step_id)]



@door
def approve_step(root: Path_ | None, step_id: str, plan_id: str | None = None, fork_id: str | None = None,
                 decision: str = "approve", by: str | None = None) -> Approval:
    """Record a person's approval (or rejection) of a step waiting at LOW confidence."""
    if decision not in ("approve", "reject"):
        raise InvalidRequest(f"decision must be approve or reject, not {decision!r}")
    layout = _layout(root)
    pid = resolve_plan(layout.root, plan_id)
    state = _state(layout, pid)
    candidates = [f for f in state.forks.values() if step_id in f.steps and (fork_id is None or f.fork_id == fork_id)]
    waiting = [f for f in candidates if f.steps[step_id].state == "waiting_approval"]
    if not candidates:
        raise NoSuchStep(f"plan {pid} has no step {step_id!r}" + (f" in fork {fork_id}" if fork_id else ""))
    if not waiting:
        states = ", ".join(f"{f.fork_id}: {f.steps[step_id].state}" for f in candidates)
        raise Conflict(f"{step_id} is not waiting for approval ({states})", code="step/not-waiting")
    from conductor.provenance.heads import plan_journal  # lazy: cryptography (~30 ms), only when journaling

    who = by or os.environ.get("USER") or "user"
    journal = plan_journal(layout, pid)
    kind = "step.approved" if decision == "approve" else "step.rejected"
    for fork in waiting:
        journal.append(kind, fork_id=fork.fork_id, step_id=step_id, by=who)
    return Approval(plan_id=pid, step_id=step_id, forks=[f.fork_id for f in waiting], decision=decision, by=who)



@door
def replay_plan(root: Path_ | None, plan_id: str | None = None, to_seq: int | None = None,
                rerun_planning: bool = False) -> ReplayView:
    """The full state of a plan as it was at event ``to_seq`` (inclusive).

    With ``rerun_planning`` every fork planned by the model is planned again from the
    journaled inputs, answered by the journaled replies (no network), and compared with the
    plan that was recorded.
    """
    layout = _layout(root)
    pid = resolve_plan(layout.root, plan_id)
    journal = Journal.for_plan(layout, pid)
    broken = journal.verify()
    state = _state(layout, pid, to_seq)
    return ReplayView(plan_id=pid, to_seq=to_seq if to_seq is not None else state.last_seq, journal_ok=broken is None,
                      journal_break=str(broken) if broken else None, state=state.to_dict(),
                      replanned=_rerun_plans(journal, state.goal, to_seq) if rerun_planning else None)


def _rerun_plans(journal: Journal, goal: str, to_seq: int | None = None) -> list[dict[str, Any]]:
    """Plan each llm-planned fork again with ``ReplayLLM``; report whether it matches."""
    from conductor.engine.planning import PlanningError, Strategy, plan_with_llm  # lazy: imports openai (~0.9 s)
    from conductor.llm import LLMError, ReplayLLM  # lazy: imports openai (~0.9 s)

    replay_llm = ReplayLLM.from_events(journal.events())
    results = []
    for event in journal.events(types="plan.planned", to_seq=to_seq):
        inputs = event.data.get("inputs") or {}
        fork_id = event.data["fork_id"]
        if inputs.get("planner") != "llm":
            results.append({"fork_id": fork_id, "replanned": False, "why": "planned by a handoff task, not a model"})
            continue
        strategy = Strategy(event.data["strategy"], inputs.get("summary", ""))
        try:
            plan = asyncio.run(plan_with_llm(replay_llm, goal, strategy, list(inputs.get("files") or []),
                                             constraints=list(inputs.get("constraints") or [])))
        except (LLMError, PlanningError) as exc:
            results.append({"fork_id": fork_id, "replanned": False, "why": str(exc)})
            continue
        same = plan.model_dump(mode="json", exclude_none=True) == event.data["plan"]
        results.append({"fork_id": fork_id, "replanned": True, "identical": same, "steps": len(plan.steps)})
    return results


# --------------------------------------------------------------------------- running plans


def _llm_client(layout: ProjectLayout, model: str | None, base_url: str | None) -> Any:
    """The project's model client with an editor's model / base URL; the key still comes from the environment."""
    if not (model or base_url):
        return None
    from conductor.engine.config import load_config  # lazy: the config model costs ~0.1 s; diagnostics need none
    from conductor.llm import ENV_BASE_URL, ENV_MODEL, LLMClient  # lazy: imports openai (~0.9 s)

    env = dict(os.environ)
    if model:
        env[ENV_MODEL] = model
    if base_url:
        env[ENV_BASE_URL] = base_url
    return LLMClient(load_config(layout).llm, env=env)


async def _run(make: Callable[[Any], Any]) -> RunSummary:
    from conductor.engine.planning import PlanningError  # lazy: imports openai (~0.9 s); status and others need none
    from conductor.engine.runner import PlanRunner  # lazy: as above
    from conductor.git.command import GitError  # lazy: as above
    from conductor.llm import LLMError  # lazy: as above

    try:
        summary: RunSummary = await make(PlanRunner)
        return summary
    except (PlanningError, LLMError) as exc:
        raise PlanFailed(str(exc)) from exc
    except GitError as exc:
        raise ProjectError(str(exc), code="git/failed") from exc


@door
async def run_goal(root: Path_ | None, goal: str, *, forks: int = 1, mode: str | None = None, merge: bool = True,
                   cancel: asyncio.Event | None = None, on_progress: Any = None, on_step: Any = None,
                   on_approval: Any = None, plan_id: str | None = None, on_plan: Any = None,
                   model: str | None = None, base_url: str | None = None, llm: Any = None) -> RunSummary:
    """Plan ``goal`` into ``forks`` strategies and run them (``build`` is one fork).

    ``plan_id`` (minted by :func:`new_plan_id` when not given) is announced through ``on_plan``
    before anything runs; ``model``/``base_url`` override the project's model settings.
    """
    if not goal.strip():
        raise InvalidRequest("the goal is empty; say what you want done")
    from conductor.engine.runner import RunOptions  # lazy: imports openai (~0.9 s)

    layout = _layout(root)
    pid = plan_id or new_plan_id()
    options = RunOptions(goal=goal, forks=forks, mode=mode, merge=merge, on_progress=on_progress, on_step=on_step,
                         on_approval=on_approval)
    client = llm if llm is not None else _llm_client(layout, model, base_url)

    async def make(runner_class: Any) -> RunSummary:
        runner = runner_class(layout, pid, options, cancel=cancel, llm=client)
        if on_plan is not None:
            on_plan(pid)
        summary: RunSummary = await runner.run()
        return summary

    return await _run(make)


@door
async def resume(root: Path_ | None, plan_id: str | None = None, *, cancel: asyncio.Event | None = None,
                 on_progress: Any = None, on_step: Any = None, on_approval: Any = None,
                 model: str | None = None, base_url: str | None = None, llm: Any = None) -> RunSummary:
    """Continue a halted or crashed plan from its journal."""
    from conductor.engine.runner import RunOptions  # lazy: imports openai (~0.9 s)

    layout = _layout(root)
    pid = resolve_plan(layout.root, plan_id)
    options = RunOptions(on_progress=on_progress, on_step=on_step, on_approval=on_approval)
    client = llm if llm is not None else _llm_client(layout, model, base_url)

    async def make(runner_class: Any) -> RunSummary:
        summary: RunSummary = await runner_class(layout, pid, options, cancel=cancel, llm=client).resume()
        return summary

    return await _run(make)


# --------------------------------------------------------------------------- evidence


@door
def handoff_metrics(root: Path_ | None = None) -> dict[str, Any]:
    """Counts, success rate and latency percentiles per fork, derived from the audit logs."""
    from conductor.handoff.metrics import (
        derive_metrics,  # lazy: the handoff package costs ~40 ms; most commands need none
    )

    return derive_metrics(_layout(root))


def format_metrics(metrics: dict[str, Any]) -> str:
    """The metrics as the CLI's table."""
    from conductor.handoff.metrics import format_table  # lazy: as in handoff_metrics (~40 ms)

    return format_table(metrics)


@door
def verify_project(root: Path_ | None = None) -> VerifyReport:
    """Every provenance signature and chain, audit log and journal of the project.

    ``problems`` name the first broken link of each chain (``file``, ``line`` or ``step``).
    """
    from conductor.provenance.verify import verify_project as verify  # lazy: cryptography (~30 ms), only for verify

    return verify(_layout(root))


@door
def rotate_project_key(root: Path_ | None = None) -> dict[str, str]:
    """Replace the project's signing key by a new one that the old key introduces in ``trust.json``.

    Records signed before stay valid; commit the changed ``.conductor/trust.json``. Returns
    ``old_key_id``, ``new_key_id`` and ``trust_file``.
    """
    from conductor.provenance.trust import TrustError, rotate_key  # lazy: cryptography (~30 ms)

    layout = _layout(root)
    try:
        rotated = rotate_key(layout)
    except TrustError as exc:
        raise ProjectError(str(exc), code="key/untrusted") from exc
    return {**rotated, "trust_file": layout.relative(layout.trust_file)}


@door
def add_member_key(root: Path_ | None = None, name: str | None = None) -> dict[str, str]:
    """A fresh clone's own signing key, added to ``trust.json`` as a member key (trusted once committed)."""
    from conductor.provenance import trust  # lazy: cryptography (~30 ms)

    layout = _layout(root)
    try:
        return trust.add_member_key(layout, name or getpass.getuser())
    except trust.TrustError as exc:
        raise ProjectError(str(exc), code="key/untrusted") from exc


@door
def reference_agent(out: Callable[[str], None], **options: Any) -> Any:
    """The reference agent (``conductor agent``), ready to ``run()``; options as ``AgentOptions``."""
    from conductor.handoff.agent import Agent, AgentError, AgentOptions  # lazy: ~45 ms, only for `conductor agent`

    try:
        return Agent(AgentOptions(**options), out=out)
    except AgentError as exc:
        raise ProjectError(str(exc), code="agent/unusable") from exc


@door
def agent_presets(root: Path_ | None) -> dict[str, Any]:
    """``conductor agent --preset list``: every preset with its command line, install state and trust."""
    from conductor.handoff.agent import AgentError, preset_listing  # lazy: ~45 ms, only for `conductor agent`

    try:
        listing: dict[str, Any] = preset_listing(Path(root) if root is not None else None)
        return listing
    except AgentError as exc:
        raise ProjectError(str(exc), code="agent/unusable") from exc


# --------------------------------------------------------------------------- the agent side of the queue




def _queue() -> Any:
    from conductor.handoff import queue  # lazy: the handoff package costs ~40 ms; only MCP calls need it

    return queue


def _queue_call(fn: Callable[[], R]) -> R:
    queue = _queue()
    try:
        return fn()
    except queue.QueueError as exc:
        raise QueueRefused(str(exc)) from exc


@door
def next_task(root: Path_ | None, executor: str, plan_id: str | None = None,
              fork_id: str | None = None) -> ClaimedTask | None:
    """Claim the oldest ready task (the atomic rename of the file contract), naming ``executor``
    as the claimer; ``None`` when nothing is pending."""
    layout = _layout(root)
    task = _queue_call(lambda: _queue().claim_next_task(layout, executor, plan_id, fork_id))
    return ClaimedTask(**task) if task is not None else None


@door
def queue_counts(root: Path_ | None, plan_id: str | None = None, fork_id: str | None = None) -> dict[str, int]:
    """How many tasks are pending, in progress, completed, failed (optionally of one plan / fork)."""
    layout = _layout(root)
    counts: dict[str, int] = _queue().queue_counts(layout, bare_id(plan_id, "plan_") if plan_id else None,
                                                   bare_id(fork_id, "fork_") if fork_id else None)
    return counts


@door
def submit_result(root: Path_ | None, args: dict[str, Any]) -> Submitted:
    """Write a claimed task's result and explanation (checked first; nothing written when refused)."""
    layout = _layout(root)
    return _queue_call(lambda: _queue().submit(layout, args))


@door
def find_verdict(root: Path_ | None, submitted: Submitted) -> Verdict | None:
    """Conductor's verdict on exactly the submitted result, once it is in; the claim is released then."""
    layout = _layout(root)
    queue = _queue()
    found = queue.find_verdict(layout, submitted)
    if found is None:
        return None
    path, provenance = found
    queue.release_claim(layout, submitted)
    return Verdict(**queue.verdict_payload(layout, submitted, path, provenance))


__all__ += [
    "Approval",
    "Cancelled",
    "ClaimedTask",
    "DiskFull",
    "Explanation",
    "FileReport",
    "PlanDocument",
    "PlanLockedError",
    "ProjectContext",
    "Readiness",
    "ReplayView",
    "Verdict",
    "step_payload",
]


def __getattr__(name: str) -> Any:
    """Names exported for typing whose modules load only when asked for (``InitReport``: only ``init`` needs it)."""
    if name in _HEAVY_NAMES:
        _load()
        return globals()[name]
    if name == "InitReport":
        from conductor.project.init import InitReport  # lazy: only `init` needs the project writer

        return InitReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
