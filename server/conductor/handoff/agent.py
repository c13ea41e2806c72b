"""The reference executor behind ``conductor agent``: the contract seen from the agent's side.

Why a module of its own: it is both a usable agent and the executable specification of
what any agent must do (docs/handoff.md, "For agents"):

1. find ``.conductor/handoff/plan_*/fork_*/pending/step_NNN.task.json`` (oldest first);
2. claim it with one ``rename`` into ``in_progress/``; on "not found" another agent won,
   take the next one;
3. check the task's checksum, work in ``workspace`` on ``allowed_files`` only;
4. write ``step_NNN.explanation.md`` then ``step_NNN.result.json`` beside the task, each
   atomically (temp file + rename); ``files_changed`` from a before/after hash of the
   allowed files.

With ``--preset NAME`` the work is done by a coding-agent CLI (aider, Claude Code, Codex CLI,
Gemini CLI, OpenCode, or one defined under ``agents:`` in config.yaml; :mod:`conductor.agents`):
the task becomes the tool's prompt, and for a ``plan`` task the tool's answer is parsed for the
plan document like any model reply. With ``--command`` the work is a shell command (cwd =
workspace; env ``CONDUCTOR_TASK_FILE``, ``CONDUCTOR_TASK_ID``, ``CONDUCTOR_WORKSPACE``,
``CONDUCTOR_ALLOWED_FILES`` newline-separated, ``CONDUCTOR_INSTRUCTION``); exit code 0 means
completed, and for a ``plan`` task stdout carries the plan JSON. Both run in the bubblewrap
sandbox the policy asks for (:mod:`conductor.sandbox`), with only the secrets their
configuration names, and the result records what ran (``agent_run``). Without either, the
agent asks the configured LLM (``conductor.llm``) and writes only allowed files (through the
sandboxed apply). New tasks are noticed through file-system events (polling as fallback).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shlex
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conductor.agents.presets import (
    Context,
    ModelTarget,
    PresetError,
    all_presets,
    as_json,
    executable,
    expand_home,
    get_preset,
    installed,
    load_config,
    model_target,
    render,
    tool_version,
)
from conductor.agents.prompt import plan_prompt, step_prompt
from conductor.agents.run import ProcessOutcome, agent_env, run_process
from conductor.contract.checksum import task_checksum
from conductor.contract.config import AgentPreset, Config
from conductor.contract.globs import matches_allowed, normalize, path_problem
from conductor.contract.result import AgentRun, Result
from conductor.contract.schemas import load
from conductor.contract.task import Task
from conductor.handoff.audit import utc_now
from conductor.handoff.claim import PendingTask, claim, claim_next
from conductor.policy import PolicyError, load_project_policy
from conductor.project.layout import ProjectLayout
from conductor.sandbox import SandboxSettings, SandboxUnavailable, probe, project_mounts
from conductor.sandbox.apply import apply_edits
from conductor.secrets import redactor, register_value
from conductor.storage.atomic import atomic_write_text

NO_LLM = "no --command given and no LLM configured"
COMMAND_GRACE = 1.0  # seconds past the task's timeout before the command is killed (Conductor fails it first)
OUTPUT_TAIL = 4000


class AgentError(Exception):
    """The agent cannot work at all (for example: no command and no LLM)."""


@dataclass
class AgentOptions:
    root: Path
    command: str | None = None
    plan_id: str | None = None
    fork_id: str | None = None
    once: bool = False
    max_tasks: int | None = None
    idle_exit: float | None = None
    name: str = "conductor-agent"
    poll_interval: float = 0.5
    preset: str | None = None
    pass_env: list[str] = field(default_factory=list)  # secret variables passed through to --command by name


@dataclass
class WorkDone:
    status: str
    files_changed: list[str]
    summary: str
    error: str | None
    plan: dict[str, Any] | None
    explanation: str
    timed_out: bool = False
    agent_run: AgentRun | None = None


def _glob(entry: str) -> bool:
    return any(ch in entry for ch in "*?[")


def expand_allowed(workspace: Path, allowed: list[str]) -> list[str]:
    """Concrete workspace files ``allowed`` names: plain entries as given, globs matched on disk."""
    out = {normalize(a) for a in allowed if a.strip() and not _glob(a) and not path_problem(a)}
    if any(_glob(a) for a in allowed):
        for dirpath, dirnames, filenames in os.walk(workspace):
            rel_dir = os.path.relpath(dirpath, workspace)
            dirnames[:] = [d for d in dirnames if d not in (".git", ".conductor")]
            for name in filenames:
                rel = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
                if matches_allowed(rel, allowed):
                    out.add(rel)
    return sorted(out)


def hash_files(workspace: Path, paths: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for rel in paths:
        try:
            out[rel] = hashlib.sha256((workspace / rel).read_bytes()).hexdigest()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            out[rel] = None
    return out


def changed_files(workspace: Path, allowed: list[str], before: dict[str, str | None]) -> list[str]:
    paths = sorted(set(before) | set(expand_allowed(workspace, allowed)))
    after = hash_files(workspace, paths)
    return [p for p in paths if before.get(p) != after.get(p)]


@dataclass
class RunSetup:
    """What every agent process of this agent shares: project, sandbox policy, secrets, how to warn."""

    root: Path
    settings: SandboxSettings
    pass_env: list[str]
    warn: Callable[[str], None]


def task_env(task: Task, task_file: Path, workspace: Path) -> dict[str, str]:
    return {"CONDUCTOR_TASK_FILE": str(task_file),
            "CONDUCTOR_TASK_ID": task.task_id,
            "CONDUCTOR_PLAN_ID": task.plan_id,
            "CONDUCTOR_FORK_ID": task.fork_id,
            "CONDUCTOR_TASK_KIND": task.kind,
            "CONDUCTOR_WORKSPACE": str(workspace),
            "CONDUCTOR_ALLOWED_FILES": "\n".join(task.allowed_files),
            "CONDUCTOR_INSTRUCTION": task.instruction}


def parse_plan(output: str) -> tuple[dict[str, Any] | None, str | None]:
    """The plan document in an agent's output (bare, fenced or in prose), or why there is none.

    A candidate valid for the plan schema wins; else the first object with ``steps`` is taken
    (the engine then names what is wrong with it, with positions).
    """
    from conductor.llm.client import (  # lazy: conductor.llm imports openai (~0.9 s)
        extract_json,
        json_candidates,
        make_validator,
    )

    document, problem = extract_json(output, make_validator(load("plan")))
    if problem is None and isinstance(document, dict):
        return document, None
    for candidate in json_candidates(output):
        if isinstance(candidate, dict) and isinstance(candidate.get("steps"), list):
            return candidate, None
    return None, f"the output holds no plan document ({problem or 'not a JSON object'})"


def _tool_files_present(workspace: Path, patterns: list[str]) -> set[str]:
    found: set[str] = set()
    for pattern in patterns:
        for match in glob.glob(pattern, root_dir=workspace, include_hidden=True):
            found.add(normalize(match))
    return found


def remove_tool_files(workspace: Path, patterns: list[str], before: set[str], allowed: list[str]) -> list[str]:
    """Remove what the tool wrote for itself (``tool_files``), unless it was there before or is allowed."""
    removed = []
    for rel in sorted(_tool_files_present(workspace, patterns) - before):
        if matches_allowed(rel, allowed) or path_problem(rel):
            continue
        target = workspace / rel
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.lstat(target).st_mode):
                shutil.rmtree(target)  # rmtree never follows a symlink inside
            else:
                target.unlink()
            removed.append(rel)
    return removed


def _explanation(task: Task, what: str, run: ProcessOutcome, changed: list[str], removed: list[str],
                 prompt: str | None = None) -> str:
    code = "timed out (killed)" if run.timed_out else f"exit code {run.exit_code}"
    parts = [f"# {task.task_id}: {task.title or task.instruction[:60]}\n",
             f"Ran {what} in `{task.workspace}`: {code} after {run.duration_seconds:.1f} s, {run.sandbox}.\n",
             f"Files changed: {', '.join(changed) or 'none'}.\n"]
    if removed:
        parts.append(f"Removed the tool's own files from the working copy: {', '.join(removed)}.\n")
    if prompt is not None:
        parts.append(f"## Prompt\n\n````\n{redactor().text(prompt)}\n````\n")
    parts.append(f"## stdout (tail)\n\n```\n{run.stdout[-OUTPUT_TAIL:]}\n```\n")
    parts.append(f"## stderr (tail)\n\n```\n{run.stderr[-OUTPUT_TAIL:]}\n```\n")
    return "\n".join(parts)


def _finish(task: Task, run: ProcessOutcome, label: str) -> tuple[str | None, dict[str, Any] | None]:
    """(error, plan) from how the process ended and, for a plan task, what it printed."""
    if run.timed_out:
        return f"{label} timed out after {task.timeout_seconds}s", None
    if run.exit_code != 0:
        return f"{label} exited {run.exit_code}: {(run.stderr or run.stdout).strip()[-500:]}", None
    if task.kind == "plan":
        plan, problem = parse_plan(run.stdout)
        if problem is not None:
            return f"{label} answered the planning task, but {problem}", None
        return None, plan
    return None, None


def _first_word(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: the shell will say so
        words = command.split()
    return os.path.basename(words[0]) if words else "command"


def work_with_command(task: Task, task_file: Path, workspace: Path, command: str,
                      setup: RunSetup | None = None) -> WorkDone:
    """Run a shell command for the task in the sandbox; exit 0 means completed."""
    setup = setup or RunSetup(workspace, SandboxSettings(), [], lambda _line: None)
    env = agent_env(setup.pass_env, task_env(task, task_file, workspace))
    before = hash_files(workspace, expand_allowed(workspace, task.allowed_files))
    run = run_process(["/bin/sh", "-c", command], cwd=workspace, env=env,
                      timeout=float(task.timeout_seconds) + COMMAND_GRACE,
                      mounts=project_mounts(workspace, setup.root), settings=setup.settings, warn=setup.warn)
    changed = changed_files(workspace, task.allowed_files, before)
    error, plan = _finish(task, run, "command")
    shown = redactor().text(command)
    agent_run = AgentRun(agent=_first_word(command), version=None,
                         command=shown, exit_code=run.exit_code, duration_seconds=round(run.duration_seconds, 3))
    summary = f"ran `{shown}`: exit {run.exit_code}" if not run.timed_out else f"`{shown}` timed out"
    return WorkDone("failed" if error else "completed", changed, summary, error, plan,
                    _explanation(task, f"`{shown}`", run, changed, []), timed_out=run.timed_out,
                    agent_run=agent_run)


@dataclass
class PresetRunner:
    """A coding-agent CLI, resolved once per ``conductor agent`` process."""

    name: str
    preset: AgentPreset
    target: ModelTarget | None
    version: str | None

    def work(self, task: Task, task_file: Path, workspace: Path, setup: RunSetup) -> WorkDone:
        plan = task.kind == "plan"
        prompt = plan_prompt(task, load("plan")) if plan else step_prompt(task)
        files = [] if plan else expand_allowed(workspace, task.allowed_files)
        home = Path(tempfile.mkdtemp(prefix=f"conductor-{self.name}-"))
        try:
            (home / "prompt.md").write_text(prompt, encoding="utf-8")
            ctx = Context(prompt=prompt, prompt_file=str(home / "prompt.md"), files=files, workspace=str(workspace),
                          home=str(home), task_file=str(task_file), task_id=task.task_id, target=self.target)
            invocation = render(self.preset, ctx, plan=plan)
            for name, content in invocation.files.items():
                (home / name).write_text(content, encoding="utf-8")
            extra = {**task_env(task, task_file, workspace), **invocation.env}
            if "HOME" in invocation.env:  # the user's git identity lives in the real home
                for var, value in (("GIT_AUTHOR_NAME", f"{self.name} (conductor agent)"),
                                   ("GIT_AUTHOR_EMAIL", "agent@conductor.invalid"),
                                   ("GIT_COMMITTER_NAME", f"{self.name} (conductor agent)"),
                                   ("GIT_COMMITTER_EMAIL", "agent@conductor.invalid")):
                    extra.setdefault(var, value)
            env = agent_env([*invocation.pass_env, *setup.pass_env], extra)
            writable = [home, *(expand_home(entry) for entry in self.preset.writable)]
            tool_before = _tool_files_present(workspace, self.preset.tool_files)
            before = hash_files(workspace, files)
            key = [self.target.api_key] if self.target else []
            run = run_process(invocation.argv, cwd=workspace, env=env,
                              timeout=float(task.timeout_seconds) + COMMAND_GRACE,
                              mounts=project_mounts(workspace, setup.root, writable=writable),
                              settings=setup.settings, stdin=invocation.stdin, warn=setup.warn, secrets=key)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        removed = remove_tool_files(workspace, self.preset.tool_files, tool_before, task.allowed_files)
        changed = [] if plan else changed_files(workspace, task.allowed_files, before)
        error, plan_doc = _finish(task, run, self.name)
        shown = redactor().text(invocation.shown)
        for value in key:
            shown = shown.replace(value, "[REDACTED]")
        agent_run = AgentRun(agent=self.name, version=self.version, command=shown, exit_code=run.exit_code,
                             duration_seconds=round(run.duration_seconds, 3))
        summary = (f"{self.name} {'planned' if plan else 'ran'}: exit {run.exit_code}" if not run.timed_out
                   else f"{self.name} timed out")
        return WorkDone("failed" if error else "completed", changed, summary, error, plan_doc,
                        _explanation(task, f"{self.name} (`{shown}`)", run, changed, removed, prompt),
                        timed_out=run.timed_out, agent_run=agent_run)


def make_preset_runner(root: Path, name: str) -> PresetRunner:
    """Resolve preset ``name`` for the project at ``root``; :class:`AgentError` if it cannot run here."""
    try:
        config = load_config(root)
        preset = get_preset(name, config)
        probe_env = agent_env(list(preset.pass_env), {})
        found = installed(preset, probe_env.get("PATH"))
    except PresetError as exc:
        raise AgentError(str(exc)) from None
    if found is None:
        hint = f" (install: {preset.install})" if preset.install else ""
        raise AgentError(f"preset `{name}` runs `{executable(preset)}`, which is not installed or not on PATH{hint}; "
                         "`conductor agent --preset list` shows every preset")
    target = model_target(config)
    if target is not None:
        register_value(target.api_key)
    with tempfile.TemporaryDirectory(prefix="conductor-version-") as scratch:  # a tool may write into its HOME
        version = tool_version(preset, {**probe_env, **({"HOME": scratch} if "HOME" in preset.env else {})})
    return PresetRunner(name=name, preset=preset, target=target, version=version)


EDITS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "files": {"type": "array", "items": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"},
                           "delete": {"type": "boolean"}},
            "required": ["path", "content"]}},
    },
    "required": ["summary", "files"],
}


def make_llm(root: Path) -> Any:
    """The project's configured LLM client, or raise :class:`AgentError` when there is none."""
    try:
        from conductor.llm import LLMClient  # lazy: imports openai (~0.9 s); an agent with --command never needs it
    except ImportError as exc:  # pragma: no cover - the llm package ships with conductor
        raise AgentError(f"{NO_LLM} ({exc})") from exc
    config_path = ProjectLayout.at(root).config_file
    config = Config()
    if config_path.exists():
        with contextlib.suppress(Exception):
            config = Config.model_validate(yaml.safe_load(config_path.read_text(encoding="utf-8")) or {})
    client = LLMClient(config.llm)
    if not client.is_configured():
        raise AgentError(f"{NO_LLM} (set {config.llm.api_key_env}, or pass --command, or --preset with a "
                         "coding-agent CLI: `conductor agent --preset list`)")
    return client


def work_with_llm(task: Task, workspace: Path, llm: Any, setup: RunSetup | None = None) -> WorkDone:
    if task.kind == "plan":
        reply = llm.complete_json([
            {"role": "system", "content": "You plan software work for coding agents. Answer with one plan JSON "
             "document."},
            {"role": "user", "content": task.instruction}], load("plan"), "handoff-plan")
        return WorkDone("completed", [], "planned with the LLM", None, reply.data,
                        f"# {task.task_id}\n\nPlanned with model {llm.model}.\n")
    files = expand_allowed(workspace, task.allowed_files)
    current = []
    for rel in files:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            current.append(f"--- {rel}\n{(workspace / rel).read_text(encoding='utf-8')[:20000]}")
    before = hash_files(workspace, files)
    reply = llm.complete_json([
        {"role": "system", "content": "You are a coding agent. Return the full new content of each file you "
         "change. You may only change these files: " + ", ".join(task.allowed_files) + ". Rules: "
         + "; ".join(task.constraints)},
        {"role": "user", "content": task.instruction + "\n\nCurrent files:\n" + "\n".join(current)}],
        EDITS_SCHEMA, "handoff-step")
    edits = [item for item in reply.data.get("files", []) if isinstance(item, dict)]
    report = apply_edits(workspace, edits, task.allowed_files, task.protected_patterns,
                         settings=setup.settings if setup else None, project_root=setup.root if setup else None,
                         warn=setup.warn if setup else None)
    refused = [item["path"] for item in report.refused]
    changed = changed_files(workspace, task.allowed_files, before)
    note = f" Refused edits outside allowed_files: {', '.join(refused)}." if refused else ""
    summary = str(reply.data.get("summary", "")) + note
    return WorkDone("completed", changed, summary, None, None,
                    f"# {task.task_id}\n\n{summary}\n\nModel: {llm.model}. Files: {', '.join(changed) or 'none'}. "
                    f"Edits applied {report.sandbox}.\n")


def preset_listing(root: Path | None) -> dict[str, Any]:
    """``conductor agent --preset list``: every preset with its command line, install state and trust."""
    try:
        config = load_config(root) if root is not None else Config()
        presets = all_presets(config)
    except PresetError as exc:
        raise AgentError(str(exc)) from None
    target = model_target(config)
    return {"presets": [as_json(name, preset, target) for name, preset in sorted(presets.items())],
            "project_model": None if target is None else {"base_url": target.base_url, "model": target.model,
                                                          "key_from": target.key_source}}


class Agent:
    """Claims and executes tasks until told to stop."""

    def __init__(self, options: AgentOptions, out: Callable[[str], None] = print) -> None:
        self.options = options
        self.layout = ProjectLayout.at(options.root)
        self.out = out
        self.identity = f"{options.name}@{socket.gethostname()}:{os.getpid()}"
        self._llm: Any = None
        self._preset: PresetRunner | None = None
        self.stopped = threading.Event()  # set from another thread to stop after the current task
        if options.command is not None and options.preset is not None:
            raise AgentError("give --command or --preset, not both")
        if options.preset is not None:
            self._preset = make_preset_runner(self.layout.root, options.preset)
            self.identity = f"{options.preset}@{socket.gethostname()}:{os.getpid()}"
        elif options.command is None:
            self._llm = make_llm(self.layout.root)
        self.settings = self._sandbox_settings()
        if self.settings.mode == "required" and not probe().ok:
            raise AgentError(f"behavior.sandbox is `required` but {probe().reason}; no task was claimed")

    def _sandbox_settings(self) -> SandboxSettings:
        try:
            return SandboxSettings.from_policy(load_project_policy(self.layout.root))
        except PolicyError as exc:
            raise AgentError(f"the project policy cannot be used ({exc}); run `conductor validate`") from None

    def _setup(self) -> RunSetup:
        return RunSetup(self.layout.root, self._sandbox_settings(), list(self.options.pass_env), self.out)

    def _changes(self) -> Iterator[list[Path]]:
        """Yields the new pending task files (an empty list every poll interval without any)."""
        self.layout.handoff_dir.mkdir(parents=True, exist_ok=True)
        timeout_ms = max(10, int(self.options.poll_interval * 1000))
        try:
            from watchfiles import watch  # lazy: absent watchfiles falls back to polling (the except below)

            def new_task(_change: object, path: str) -> bool:
                # Only a task appearing in a pending/ folder is worth a rescan: ignore audit lines,
                # results and moves that would otherwise wake every agent (a thundering herd).
                return path.endswith(".task.json") and os.path.basename(os.path.dirname(path)) == "pending"

            for changes in watch(self.layout.handoff_dir, watch_filter=new_task, debounce=100, step=5,
                                 rust_timeout=timeout_ms, yield_on_timeout=True, raise_interrupt=False,
                                 ignore_permission_denied=True):
                yield sorted(Path(path) for _change, path in changes)
        except Exception:  # no inotify: poll
            while True:
                time.sleep(self.options.poll_interval)
                yield []

    def _wanted(self, path: Path) -> PendingTask | None:
        fork_dir = path.parent.parent
        plan_id = fork_dir.parent.name.removeprefix("plan_")
        fork_id = fork_dir.name.removeprefix("fork_")
        if self.options.plan_id not in (None, plan_id) or self.options.fork_id not in (None, fork_id):
            return None
        return PendingTask(plan_id, fork_id, path.name.removesuffix(".task.json"), path)

    def _claim(self, hints: list[Path]) -> Path | None:
        """Try the tasks an event just announced; scan every pending folder only without hints.

        When a task appears, every idle agent wakes; trying just that file keeps the losers of
        the race from each rescanning every fork (a full scan still runs every poll interval
        and after each task an agent finishes)."""
        if not hints:
            return claim_next(self.layout, self.options.plan_id, self.options.fork_id)
        for path in hints:
            task = self._wanted(path)
            if task is not None and (claimed := claim(task)) is not None:
                return claimed
        return None

    def run(self) -> int:
        """Work until ``--once``/``--max-tasks``/``--idle-exit`` says stop; returns tasks handled."""
        opts = self.options
        handled = 0
        last_work = time.monotonic()
        changes: Iterator[list[Path]] | None = None
        hints: list[Path] = []
        limit = 1 if opts.once else opts.max_tasks
        idle = opts.idle_exit if opts.idle_exit is not None else (0.0 if opts.once else None)
        try:
            while (limit is None or handled < limit) and not self.stopped.is_set():
                claimed = self._claim(hints)
                hints = []
                if claimed is not None:
                    self.execute(claimed)
                    handled += 1
                    last_work = time.monotonic()
                    continue
                if idle is not None and time.monotonic() - last_work >= idle:
                    break
                if changes is None:
                    changes = self._changes()
                got = next(changes, None)
                if got is None:  # the watcher stopped (Ctrl-C while waiting): exit cleanly
                    break
                hints = got
        finally:
            if changes is not None and hasattr(changes, "close"):
                changes.close()
        return handled

    def execute(self, task_file: Path) -> None:
        fork = task_file.parent.parent.name.removeprefix("fork_")
        plan = task_file.parent.parent.parent.name.removeprefix("plan_")
        stem = task_file.name.removesuffix(".task.json")
        self.out(f"claimed {plan}/{fork}/{stem}")
        started = utc_now()
        body = json.loads(task_file.read_bytes())
        try:
            task = Task.model_validate(body)
        except ValueError as exc:
            self._write(task_file, stem, "failed", [], "", f"task file is invalid: {exc}", None,
                        f"# {stem}\n\nThe task file is invalid; nothing was done.\n", started)
            return
        if task_checksum(body) != task.checksum:
            self._write(task_file, stem, "failed", [], "", "task checksum does not match its content; refused",
                        None, f"# {stem}\n\nRefused: the task was edited after Conductor wrote it.\n", started)
            return
        workspace = (self.layout.root / task.workspace).resolve()
        try:
            setup = self._setup()
            if task.sandbox is not None:  # the task's own rules (a plan may have tightened the project's)
                setup.settings = SandboxSettings(mode=task.sandbox.mode, network=task.sandbox.network)
            if self._preset is not None:
                done = self._preset.work(task, task_file, workspace, setup)
            elif self.options.command is not None:
                done = work_with_command(task, task_file, workspace, self.options.command, setup)
            else:
                done = work_with_llm(task, workspace, self._llm, setup)
        except (AgentError, SandboxUnavailable, PresetError) as exc:
            done = WorkDone("failed", [], "", str(exc), None, f"# {stem}\n\nNothing was run: {exc}\n")
        except Exception as exc:
            message = redactor().text(str(exc))
            done = WorkDone("failed", [], "", f"agent error: {message}", None, f"# {stem}\n\nAgent error: {message}\n")
        if not task_file.exists():
            self.out(f"withdrawn {plan}/{fork}/{stem} (timed out before the result was written)")
            return
        if done.timed_out:
            # Past the task's timeout Conductor fails the step itself; a late result would only race it.
            self.out(f"timeout {plan}/{fork}/{stem}: command killed, no result written")
            return
        self._write(task_file, stem, done.status, done.files_changed, done.summary, done.error, done.plan,
                    done.explanation, started, done.agent_run)
        self.out(f"done {plan}/{fork}/{stem} {done.status}")

    def _write(self, task_file: Path, stem: str, status: str, files: list[str], summary: str,
               error: str | None, plan: dict[str, Any] | None, explanation: str, started: str,
               agent_run: AgentRun | None = None) -> None:
        folder = task_file.parent
        scrub = redactor()
        atomic_write_text(folder / f"{stem}.explanation.md", scrub.text(explanation))
        try:
            body = json.loads(task_file.read_bytes())
        except (OSError, ValueError):
            body = {}
        result = Result.answering(
            body if isinstance(body, dict) else {}, task_id=stem, status=status, files_changed=files,
            summary=scrub.text(summary), error=scrub.text(error) if error else error, executor=self.identity,
            started_at=started, finished_at=utc_now(), plan=plan,
            agent_run=agent_run)
        atomic_write_text(folder / f"{stem}.result.json",
                          result.model_dump_json(indent=2, exclude_none=True) + "\n")
