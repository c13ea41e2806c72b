"""What every door shows of a plan: typed views built from the one journal projection.

Why it exists: the CLI's ``status``, the MCP ``status`` tool, the language server's
``conductor/stepChanged`` notifications and code lenses, and the editor's tree all show
the same state for the same step because they all get it here, from
:mod:`conductor.journal.projection` (the single fold of the journal) plus where the step's
files are on disk. ``StepView.to_json()`` *is* the ``conductor/stepChanged`` payload. A fork an agent planned
shows its planning task (``step_000``) first, so "waiting for an agent to plan" is visible too.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from conductor.journal.journal import Journal
from conductor.journal.projection import STEP_STATES, PlanState, StepState
from conductor.project.files import read_regular
from conductor.project.layout import ProjectLayout

WaitingFor = Literal["approval", "agent"]
RUNNING = ("new", "running")  # a plan whose engine may still act; once halted or finished nothing waits
SUFFIXES = {"task": ".task.json", "result": ".result.json", "provenance": ".provenance.json"}
FOLDERS = ("completed", "failed", "in_progress", "pending")  # where a file is looked for, final states first
MAX_POLICY_BYTES = 2 * 1024 * 1024
PLANNING_STEP = "step_000"  # a fork planned by an agent: its planning task (kind "plan") comes first


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Confidence(View):
    score: float
    level: str


class StepPaths(View):
    task: str | None = None
    result: str | None = None
    provenance: str | None = None


class StepView(View):
    """One step of one fork: the ``conductor/stepChanged`` payload.

    ``state`` is the projection's: ``pending``, ``waiting_approval``, ``in_progress`` (handed
    off, with an agent or waiting for one), ``completed``, ``failed`` or ``skipped`` (rejected
    by a person). ``waiting_for`` says whom the step waits for (``approval``: a person;
    ``agent``: the task is handed off and no verdict is in yet) and ``waiting_since`` since
    when (UTC, ISO 8601). ``claimed`` is true once an agent has taken the task. A step of a
    halted or finished plan waits for nobody (until ``conductor resume``).
    """

    plan_id: str
    fork_id: str
    step_id: str
    kind: Literal["plan", "step"]  # "plan": a fork's planning task (step_000)
    title: str
    state: str
    since: str | None
    waiting_for: WaitingFor | None
    waiting_since: str | None
    claimed: bool
    executor: str | None
    attempts: int
    confidence: Confidence | None
    reason: str | None
    paths: StepPaths
    requested_loosening: list[str] = []  # what an agent-written plan asks to loosen (held until a person approves)
    kept_copies: list[str] = []  # failed attempts' working copies still on disk (absolute), for inspection


class ForkView(View):
    fork_id: str
    strategy: str
    status: str
    score: float | None
    branch: str | None
    steps: list[StepView]


class Waiting(View):
    """The step of a plan to act on: the first waiting for approval, else the first waiting for an agent."""

    waiting_for: WaitingFor
    fork_id: str
    step_id: str
    title: str
    since: str | None
    task: str | None


class PlanView(View):
    plan_id: str
    goal: str
    mode: str
    state: str
    display_state: str  # done | failed | halted | waiting_for_approval | waiting_for_agent | running | pending
    waiting: Waiting | None
    outcome: str | None
    halted_reason: str | None
    merged: dict[str, Any] | None
    counts: dict[str, int]
    tokens: int
    policy_changed: str | None = None  # the project policy changed since the plan pinned it
    held_by: dict[str, Any] | None = None  # the process running the plan (pid, host, command, since, text)
    forks: list[ForkView]


class StatusView(View):
    plans: list[PlanView]


class ForkFiles:
    """The hand-off folders of one fork, each listed once, so showing N steps costs 4 listings, not 12·N stats.

    ``exists`` answers as ``Path.exists`` does for ``<folder>/<name>`` (a name that is listed is
    still ``stat``-ed, so a dangling symlink is not a file), for names without a path separator.
    """

    def __init__(self, layout: ProjectLayout, plan_id: str, fork_id: str) -> None:
        self.dirs = {folder: str(layout.state_dir(plan_id, fork_id, folder)) for folder in FOLDERS}
        self._names: dict[str, frozenset[str]] = {}

    def exists(self, folder: str, name: str) -> str | None:
        """The path of ``<folder>/<name>`` when it exists, else ``None``."""
        names = self._names.get(folder)
        if names is None:
            try:
                names = self._names[folder] = frozenset(os.listdir(self.dirs[folder]))
            except OSError:
                names = self._names[folder] = frozenset()
        if name not in names and "/" not in name and name not in ("", ".", ".."):
            return None
        path = os.path.join(self.dirs[folder], name)
        return path if os.path.exists(path) else None


def _paths(layout: ProjectLayout, plan_id: str, step: StepState, files: ForkFiles | None = None) -> StepPaths:
    files = files or ForkFiles(layout, plan_id, step.fork_id)
    where: dict[str, str | None] = dict.fromkeys(SUFFIXES)
    for folder in FOLDERS:
        for key, suffix in SUFFIXES.items():
            if where[key] is None:
                where[key] = files.exists(folder, f"{step.step_id}{suffix}")
    return StepPaths(**where)


def _reason(step: StepState) -> str | None:
    if step.state == "failed":
        return step.failure_reason or step.verdict_reason
    if step.state == "skipped" and step.rejected_by:
        return f"rejected by {step.rejected_by}"
    if step.state == "waiting_approval":
        score = (step.confidence or {}).get("score")
        return f"LOW confidence {score}: waits for a person's approval" if score is not None else \
            "waits for a person's approval"
    return step.verdict_reason if step.state == "completed" else None


def step_view(layout: ProjectLayout, plan_id: str, step: StepState, files: ForkFiles | None = None) -> StepView:
    """The view of one step; ``files``: its fork's folders, listed once for all the fork's steps."""
    files = files or ForkFiles(layout, plan_id, step.fork_id)
    paths = _paths(layout, plan_id, step, files)
    in_progress = files.dirs["in_progress"]
    claimed = step.executor is not None or (step.state == "in_progress" and paths.task is not None
                                            and paths.task.startswith(in_progress))
    waiting: WaitingFor | None = ("approval" if step.state == "waiting_approval"
                                  else "agent" if step.state == "in_progress" else None)
    confidence = step.confidence
    return StepView(
        plan_id=plan_id, fork_id=step.fork_id, step_id=step.step_id, kind="step", title=step.title, state=step.state,
        since=step.since, waiting_for=waiting, waiting_since=step.since if waiting else None, claimed=claimed,
        executor=step.executor, attempts=step.attempts,
        confidence=Confidence(score=confidence["score"], level=confidence["level"]) if confidence else None,
        reason=_reason(step), paths=paths, requested_loosening=requested_loosening(step.policy),
        kept_copies=kept_copies(layout, step),
    )


def kept_copies(layout: ProjectLayout, step: StepState) -> list[str]:
    """The failed attempts' working copies of ``step`` that are still there (only under ``.conductor/attempts/``)."""
    out = []
    for copy in step.kept_copies:
        path = layout.root / copy
        if (".." not in path.parts and path.parent.parent.parent == layout.attempts_dir
                and not path.is_symlink() and path.is_dir()):
            out.append(str(path))
    return out


def requested_loosening(policy: dict[str, Any] | None) -> list[str]:
    """What an agent-written plan asked to loosen for a step (held until a person approves), one line each."""
    out = []
    for request in (policy or {}).get("requested_loosening") or []:
        origin = request.get("origin") or {}
        where = origin.get("file") or origin.get("level") or ""
        if where and origin.get("line"):
            where = f"{where}:{origin['line']}"
        out.append(f"{request.get('message')}" + (f" ({where})" if where else ""))
    return out


def policy_drift(layout: ProjectLayout, journal: Journal) -> str | None:
    """Why the project policy no longer is the policy the plan pinned when it started, or ``None``."""
    pin = next((event.data.get("policy_pin") for event in journal.events(types="plan.created")), None)
    if not isinstance(pin, dict) or not pin.get("sha256"):
        return None
    try:  # hashed as the runner pinned it: the text read as UTF-8, encoded again
        current: str | None = read_regular(layout.policy_file, MAX_POLICY_BYTES).decode("utf-8")
    except FileNotFoundError:
        current = ""
    except (OSError, UnicodeDecodeError):
        current = None
    if current is not None and hashlib.sha256(current.encode("utf-8")).hexdigest() == pin["sha256"]:
        return None
    return (f"{layout.policy_display} changed since this plan started; the plan keeps running under the policy "
            "pinned when it started (a new plan uses the new one)")


def step_payload(layout: ProjectLayout, plan_id: str, step: StepState) -> dict[str, Any]:
    """The ``conductor/stepChanged`` payload of one step (the runner's ``on_step`` sends it)."""
    return step_view(layout, plan_id, step).to_json()


def planning_view(layout: ProjectLayout, plan_id: str, fork_id: str) -> StepView | None:
    """The planning task of a fork planned by an agent (``step_000``, kind ``plan``), as a step.

    The journal records the plan it produced, not the hand-off itself; where its task file is
    says how far it got: ``pending`` (handed off, waiting for an agent), ``in_progress``
    (claimed), ``completed`` or ``failed``. ``since`` is when the file got there.
    """
    paths = StepPaths(**{key: _first(layout, plan_id, fork_id, suffix) for key, suffix in SUFFIXES.items()})
    if paths.task is None:
        return None
    folder = os.path.basename(os.path.dirname(paths.task))
    state = "in_progress" if folder in ("pending", "in_progress") else folder
    try:
        body = json.loads(read_regular(paths.task, 1 << 20))
        title = str(body.get("title") or "Planning") if isinstance(body, dict) else "Planning"
        since = datetime.fromtimestamp(os.lstat(paths.task).st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OSError, ValueError):
        title, since = "Planning", None
    waiting = state == "in_progress"
    return StepView(plan_id=plan_id, fork_id=fork_id, step_id=PLANNING_STEP, kind="plan", title=title, state=state,
                    since=since,
                    waiting_for="agent" if waiting else None, waiting_since=since if waiting else None,
                    claimed=folder != "pending", executor=None, attempts=1, confidence=None,
                    reason="planning: waiting for an agent to write the plan" if folder == "pending" else None,
                    paths=paths)


def _first(layout: ProjectLayout, plan_id: str, fork_id: str, suffix: str) -> str | None:
    for folder in FOLDERS:
        path = layout.step_file(plan_id, fork_id, folder, PLANNING_STEP, suffix)
        if os.path.lexists(path):
            return str(path)
    return None


def fork_steps(layout: ProjectLayout, plan_id: str, fork_id: str, state: PlanState) -> list[StepView]:
    """Every step of a fork as the doors show it: its planning task (when an agent planned it), then the plan's."""
    fork = state.forks.get(fork_id)
    files = ForkFiles(layout, plan_id, fork_id)
    steps = [step_view(layout, plan_id, s, files) for s in fork.steps.values()] if fork is not None else []
    planning = planning_view(layout, plan_id, fork_id) if PLANNING_STEP not in (fork.steps if fork else {}) else None
    out = ([planning] if planning is not None else []) + steps
    if state.status not in RUNNING:  # halted or finished: nothing waits until `conductor resume`
        for step in out:
            step.waiting_for = step.waiting_since = None
    return out


def _display_state(state: PlanState, waiting: Waiting | None) -> str:
    if state.status == "finished":
        return "done" if state.outcome == "completed" else "failed"
    if state.status == "halted":
        return "halted"
    if waiting is not None:
        return f"waiting_for_{waiting.waiting_for}"
    return "running" if state.status == "running" else "pending"


def plan_view(layout: ProjectLayout, plan_id: str, state: PlanState, policy_changed: str | None = None,
              held_by: dict[str, Any] | None = None) -> PlanView:
    forks = [ForkView(fork_id=fork_id, strategy=fork.strategy, status=fork.status, score=fork.score,
                      branch=fork.branch, steps=fork_steps(layout, plan_id, fork_id, state))
             for fork_id, fork in state.forks.items()]
    waiting = next((Waiting(waiting_for=wanted, fork_id=s.fork_id, step_id=s.step_id, title=s.title,
                            since=s.waiting_since, task=s.paths.task)
                    for wanted in ("approval", "agent") for f in forks for s in f.steps if s.waiting_for == wanted),
                   None)
    counts = dict.fromkeys(STEP_STATES, 0)
    for fork_view in forks:
        for step in fork_view.steps:
            counts[step.state] = counts.get(step.state, 0) + 1
    return PlanView(plan_id=plan_id, goal=state.goal, mode=state.mode, state=state.status,
                    display_state=_display_state(state, waiting), waiting=waiting, outcome=state.outcome,
                    halted_reason=state.halted_reason, merged=state.merged, counts=counts,
                    tokens=state.tokens.total_tokens, policy_changed=policy_changed, held_by=held_by, forks=forks)
