"""The live handoff view: which steps exist, in which state, and what changed.

State comes from the files of the handoff contract (``handoff/plan_<id>/fork_<id>/<state>/``)
and from the plan's journal (``step.waiting_approval`` and friends). After every change
under ``.conductor/handoff`` or a plan's journal, :meth:`StepTracker.refresh` re-reads it,
sends ``conductor/stepChanged`` for each step whose state moved, refreshes code lenses,
re-checks open documents and asks for approval of newly waiting steps.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from conductor.lsp.documents import Analysis
from conductor.lsp.positions import Lines
from conductor.project.layout import CONDUCTOR_DIR, TASK_STATES
from conductor.validation.diagnostics import Range

if TYPE_CHECKING:
    from conductor.lsp.server import ConductorServer

log = logging.getLogger("conductor.lsp.steps")
STEP_CHANGED = "conductor/stepChanged"
JOURNAL_STATES = {
    "step.waiting_approval": "waiting_approval",
    "step.approved": "pending",
    "step.rejected": "failed",
    "step.handed_off": "pending",
    "step.claimed": "in_progress",
    "step.completed": "completed",
    "step.failed": "failed",
}


@dataclass
class StepInfo:
    plan_id: str
    fork_id: str
    step_id: str
    title: str = ""
    state: str = "pending"
    confidence: dict[str, Any] | None = None
    reason: str | None = None
    task: Path | None = None
    result: Path | None = None
    provenance: Path | None = None
    task_data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.plan_id, self.fork_id, self.step_id)

    def payload(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "fork_id": self.fork_id,
            "step_id": self.step_id,
            "title": self.title,
            "state": self.state,
            "confidence": self.confidence,
            "reason": self.reason,
            "paths": {
                "task": str(self.task) if self.task else None,
                "result": str(self.result) if self.result else None,
                "provenance": str(self.provenance) if self.provenance else None,
            },
        }

    def signature(self) -> tuple[Any, ...]:
        return (self.state, self.title, json.dumps(self.confidence, sort_keys=True), self.reason,
                self.task, self.result, self.provenance)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _confidence(data: Any) -> dict[str, Any] | None:
    if isinstance(data, dict) and "score" in data and "level" in data:
        return {"score": data["score"], "level": data["level"]}
    return None


def _journal(root: Path, plan_id: str) -> list[dict[str, Any]]:
    path = root / CONDUCTOR_DIR / "plans" / plan_id / "journal.jsonl"
    events: list[dict[str, Any]] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    events.append(record)
    except OSError:
        pass
    return events


def scan(root: Path) -> dict[tuple[str, str, str], StepInfo]:
    """Every step of every plan of the project at ``root``: the engine's view (journal replay,
    ``status``) over what the handoff files and journals say on their own."""
    steps = scan_files(root)
    from conductor.lsp import engine

    status = engine.try_call("status", root)
    for plan in (status or {}).get("plans", []) if isinstance(status, dict) else []:
        for fork in plan.get("forks") or []:
            for payload in fork.get("steps") or []:
                info = from_payload({"plan_id": plan.get("plan_id"), "fork_id": fork.get("fork_id"), **payload})
                if info is not None:
                    previous = steps.get(info.key)
                    if previous is not None:
                        info.task_data = previous.task_data
                        info.title = info.title or previous.title
                    elif info.task is not None:
                        info.task_data = _load_json(info.task)
                    steps[info.key] = info
    return steps


def from_payload(payload: Any) -> StepInfo | None:
    """A StepInfo from a ``conductor/stepChanged``-shaped payload (the engine's ``step_payload``)."""
    if not isinstance(payload, dict) or not all(isinstance(payload.get(k), str)
                                                for k in ("plan_id", "fork_id", "step_id")):
        return None
    paths = payload.get("paths") or {}

    def path(name: str) -> Path | None:
        value = paths.get(name) if isinstance(paths, dict) else None
        return Path(value) if isinstance(value, str) and value else None

    return StepInfo(payload["plan_id"], payload["fork_id"], payload["step_id"], str(payload.get("title") or ""),
                    str(payload.get("state") or "pending"), _confidence(payload.get("confidence")),
                    payload.get("reason"), path("task"), path("result"), path("provenance"))


def scan_files(root: Path) -> dict[tuple[str, str, str], StepInfo]:
    """Steps as the handoff folders and plan journals show them, without the engine."""
    steps: dict[tuple[str, str, str], StepInfo] = {}
    conductor = root / CONDUCTOR_DIR
    plan_ids: set[str] = set()
    plans_dir = conductor / "plans"
    if plans_dir.is_dir():
        plan_ids.update(p.name for p in plans_dir.iterdir() if p.is_dir())
    handoff = conductor / "handoff"
    if handoff.is_dir():
        plan_ids.update(p.name.removeprefix("plan_") for p in handoff.glob("plan_*") if p.is_dir())
    for plan_id in sorted(plan_ids):
        plan_steps = _load_json(plans_dir / plan_id / "plan.json").get("steps", [])
        titles = {s.get("id"): s.get("title", "") for s in plan_steps if isinstance(s, dict)}
        for event in _journal(root, plan_id):
            data = event.get("data") or {}
            step_id, fork_id = data.get("step_id"), data.get("fork_id") or "main"
            if not isinstance(step_id, str):
                continue
            info = steps.setdefault((plan_id, fork_id, step_id),
                                    StepInfo(plan_id, fork_id, step_id, titles.get(step_id, "")))
            kind = event.get("type")
            if kind == "step.confidence":
                info.confidence = _confidence(data.get("confidence"))
            elif kind in JOURNAL_STATES:
                info.state = JOURNAL_STATES[kind]
                info.reason = data.get("reason") if kind in ("step.failed", "step.verified") else None
                if kind == "step.rejected":
                    info.reason = f"rejected by {data.get('by', 'a human')}"
                if kind == "step.waiting_approval" and info.confidence:
                    info.reason = f"LOW confidence {info.confidence['score']}: waits for approval"
        fork_dirs = sorted((handoff / f"plan_{plan_id}").glob("fork_*")) if handoff.is_dir() else []
        for fork_dir in fork_dirs:
            fork_id = fork_dir.name.removeprefix("fork_")
            for state in TASK_STATES:
                for task_path in sorted((fork_dir / state).glob("*.task.json")):
                    step_id = task_path.name.removesuffix(".task.json")
                    data = _load_json(task_path)
                    info = steps.setdefault((plan_id, fork_id, step_id),
                                            StepInfo(plan_id, fork_id, step_id, titles.get(step_id, "")))
                    journal_waiting = info.state == "waiting_approval"
                    info.state = "waiting_approval" if state == "pending" and journal_waiting else state
                    info.task, info.task_data = task_path, data
                    info.title = data.get("title") or info.title
                    info.confidence = _confidence(data.get("confidence")) or info.confidence
                    result = task_path.with_name(f"{step_id}.result.json")
                    provenance = task_path.with_name(f"{step_id}.provenance.json")
                    info.result = result if result.exists() else None
                    info.provenance = provenance if provenance.exists() else None
                    if state == "failed":
                        from conductor.contract.provenance import decode_predicate

                        signed = decode_predicate(_load_json(provenance)) if info.provenance else None
                        info.reason = (signed or {}).get("reason") \
                            or (_load_json(result).get("error") if info.result else None) or info.reason
    return steps


def find_step(steps: dict[tuple[str, str, str], StepInfo], step_id: str, plan_id: str | None) -> StepInfo | None:
    matches = [s for s in steps.values() if s.step_id == step_id and (plan_id is None or s.plan_id == plan_id)]
    return matches[-1] if matches else None


def step_markdown(root: Path | None, step_id: str, plan_id: str | None = None,
                  task: dict[str, Any] | None = None) -> str:
    """The explanation of a step: the engine's ``explain_step`` when available, else the task file's own words."""
    from conductor.lsp import engine

    if root is not None:
        explained = engine.try_call("explain_step", root, step_id, plan_id=plan_id)
        if isinstance(explained, dict) and isinstance(explained.get("markdown"), str):
            return str(explained["markdown"])
        if isinstance(explained, str):
            return explained
    if task is None and root is not None:
        info = find_step(scan(root), step_id, plan_id)
        task = info.task_data if info else None
    out = [f"### {step_id}" + (f" — {task.get('title')}" if task and task.get("title") else "")]
    if not task:
        out.append("_No task file for this step yet._")
        return "\n\n".join(out)
    out.append(str(task.get("instruction", "")))
    files = task.get("allowed_files") or []
    if files:
        out.append("**Allowed files:** " + ", ".join(f"`{f}`" for f in files))
    conf = task.get("confidence") or {}
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


class StepTracker:
    def __init__(self, ls: ConductorServer) -> None:
        self.ls = ls
        self.snapshot: dict[tuple[str, str, str], StepInfo] = {}
        self.task: asyncio.Future[None] | None = None
        self.again = False
        self.again_notify = False

    def scan_all(self) -> dict[tuple[str, str, str], StepInfo]:
        current: dict[tuple[str, str, str], StepInfo] = {}
        for root in self.ls.project_roots():
            current.update(scan(root))
        return current

    def refresh(self, notify: bool = True) -> None:
        """Re-read the handoff state in a worker thread (coalesced), then notify about changes."""
        if self.task is not None and not self.task.done():
            self.again = True
            self.again_notify = self.again_notify or notify
            return
        self.task = asyncio.ensure_future(self._refresh(notify))
        self.ls.background.add(self.task)
        self.task.add_done_callback(self.ls.background.discard)

    async def _refresh(self, notify: bool) -> None:
        try:
            while True:
                self.again, self.again_notify = False, False
                current = await asyncio.to_thread(self.scan_all)
                self.apply(current, notify)
                if not self.again:
                    return
                notify = self.again_notify
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.ls.log_error(f"handoff refresh failed: {exc!r}")

    def apply(self, current: dict[tuple[str, str, str], StepInfo], notify: bool = True) -> list[StepInfo]:
        changed = [info for key, info in current.items()
                   if key not in self.snapshot or self.snapshot[key].signature() != info.signature()]
        log.debug("handoff refresh: %d steps, %d changed, notify=%s", len(current), len(changed), notify)
        self.snapshot = current
        if notify:
            for info in changed:
                self.ls.protocol.notify(STEP_CHANGED, info.payload())
        if changed:
            self.ls.refresh_code_lenses()
            self.ls.scheduler.revalidate_open(kinds=("task", "plan"))
        for info in current.values():
            if info.state == "waiting_approval":
                self.ls.approvals.ask(info)
        return changed

    def engine_step(self, payload: Any) -> None:
        """The engine reported a step change while running (``on_step``): forward it at once."""
        info = from_payload(payload)
        if info is None:
            return
        previous = self.snapshot.get(info.key)
        if previous is not None:
            info.task_data = previous.task_data
        if previous is None or previous.signature() != info.signature():
            self.snapshot[info.key] = info
            self.ls.protocol.notify(STEP_CHANGED, info.payload())
            self.ls.refresh_code_lenses()
            self.ls.scheduler.revalidate_open(kinds=("task", "plan"))
        if info.state == "waiting_approval":
            self.ls.approvals.ask(info)

    def for_document(self, analysis: Analysis) -> list[StepInfo]:
        """Steps a task or plan document shows (by its task id, or its plan's steps)."""
        data = analysis.doc.data if isinstance(analysis.doc.data, dict) else {}
        if analysis.kind == "task":
            plan_id = data.get("plan_id")
            return [s for s in self.snapshot.values()
                    if s.step_id == data.get("task_id") and (plan_id is None or s.plan_id == plan_id)]
        if analysis.kind == "plan":
            plan_id = plan_id_of(analysis.path)
            ids = {s.get("id") for s in data.get("steps", []) if isinstance(s, dict)}
            return [s for s in self.snapshot.values() if s.step_id in ids and (plan_id is None or s.plan_id == plan_id)]
        return []

    def diagnostics_for(self, analysis: Analysis, lines: Lines) -> list[lsp.Diagnostic]:
        """A waiting step is visible even without showMessageRequest: an Information diagnostic."""
        out = []
        for info in self.for_document(analysis):
            if info.state != "waiting_approval":
                continue
            rng = step_range(analysis, info.step_id)
            score = info.confidence["score"] if info.confidence else "?"
            out.append(lsp.Diagnostic(
                range=lines.range(rng), severity=lsp.DiagnosticSeverity.Warning, code="step/waiting-approval",
                source="conductor",
                message=f"{info.step_id} waits for approval (LOW confidence {score}): "
                        "approve or skip it (code lens, or `conductor approve`)",
                data={"plan_id": info.plan_id, "fork_id": info.fork_id, "step_id": info.step_id},
            ))
        return out


def plan_id_of(path: Path) -> str | None:
    parts = path.parts
    if path.name == "plan.json" and len(parts) >= 3 and parts[-3] == "plans":
        return parts[-2]
    return None


def step_range(analysis: Analysis, step_id: str) -> Range:
    doc = analysis.doc
    data = doc.data if isinstance(doc.data, dict) else {}
    if analysis.kind == "task":
        return doc.value_range(("task_id",))
    for i, step in enumerate(data.get("steps", [])):
        if isinstance(step, dict) and step.get("id") == step_id:
            return doc.value_range(("steps", i, "id"))
    return Range(0, 0, 0, 0)
