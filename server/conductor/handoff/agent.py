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

With ``--command`` the work is a shell command (cwd = workspace; env
``CONDUCTOR_TASK_FILE``, ``CONDUCTOR_TASK_ID``, ``CONDUCTOR_WORKSPACE``,
``CONDUCTOR_ALLOWED_FILES`` newline-separated, ``CONDUCTOR_INSTRUCTION``); exit code 0
means completed. For a ``plan`` task the command's stdout must be the plan JSON. Without
``--command`` the agent asks the configured LLM (``conductor.llm``) and writes only
allowed files. New tasks are noticed through file-system events (polling as fallback).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor.contract.checksum import task_checksum
from conductor.contract.result import Result
from conductor.contract.task import Task
from conductor.handoff.audit import utc_now
from conductor.handoff.claim import PendingTask, claim, claim_next
from conductor.policy.globs import matches_allowed, normalize, path_problem
from conductor.project.layout import ProjectLayout
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


@dataclass
class WorkDone:
    status: str
    files_changed: list[str]
    summary: str
    error: str | None
    plan: dict[str, Any] | None
    explanation: str
    timed_out: bool = False


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


def _run_shell(command: str, workspace: Path, env: dict[str, str], timeout: float) -> tuple[int | None, str, str]:
    proc = subprocess.Popen(command, shell=True, cwd=workspace, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def work_with_command(task: Task, task_file: Path, workspace: Path, command: str) -> WorkDone:
    env = {**os.environ,
           "CONDUCTOR_TASK_FILE": str(task_file),
           "CONDUCTOR_TASK_ID": task.task_id,
           "CONDUCTOR_PLAN_ID": task.plan_id,
           "CONDUCTOR_FORK_ID": task.fork_id,
           "CONDUCTOR_TASK_KIND": task.kind,
           "CONDUCTOR_WORKSPACE": str(workspace),
           "CONDUCTOR_ALLOWED_FILES": "\n".join(task.allowed_files),
           "CONDUCTOR_INSTRUCTION": task.instruction}
    before = hash_files(workspace, expand_allowed(workspace, task.allowed_files))
    code, out, err = _run_shell(command, workspace, env, float(task.timeout_seconds) + COMMAND_GRACE)
    changed = changed_files(workspace, task.allowed_files, before)
    plan: dict[str, Any] | None = None
    error: str | None = None
    if code is None:
        error = f"command timed out after {task.timeout_seconds}s"
    elif code != 0:
        error = f"command exited {code}: {(err or out).strip()[-500:]}"
    elif task.kind == "plan":
        try:
            parsed = json.loads(out)
            if not isinstance(parsed, dict):
                raise ValueError("not a JSON object")
            plan = parsed
        except ValueError as exc:
            error = f"a plan task's command must print a plan JSON document on stdout ({exc})"
    status = "failed" if error else "completed"
    explanation = (f"# {task.task_id}: {task.title or task.instruction[:60]}\n\n"
                   f"Ran `{command}` in `{task.workspace}`: "
                   f"{'timed out' if code is None else f'exit code {code}'}.\n\n"
                   f"Files changed: {', '.join(changed) or 'none'}.\n\n"
                   f"## stdout (tail)\n\n```\n{out[-OUTPUT_TAIL:]}\n```\n\n"
                   f"## stderr (tail)\n\n```\n{err[-OUTPUT_TAIL:]}\n```\n")
    summary = f"ran `{command}`: exit {code}" if code is not None else f"`{command}` timed out"
    return WorkDone(status, changed, summary, error, plan, explanation, timed_out=code is None)


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
        import yaml

        from conductor.contract.config import Config
        from conductor.llm import LLMClient
    except ImportError as exc:  # pragma: no cover - the llm package ships with conductor
        raise AgentError(f"{NO_LLM} ({exc})") from exc
    config_path = ProjectLayout.at(root).config_file
    config = Config()
    if config_path.exists():
        with contextlib.suppress(Exception):
            config = Config.model_validate(yaml.safe_load(config_path.read_text(encoding="utf-8")) or {})
    client = LLMClient(config.llm)
    if not client.is_configured():
        raise AgentError(f"{NO_LLM} (set {config.llm.api_key_env} or pass --command)")
    return client


def work_with_llm(task: Task, workspace: Path, llm: Any) -> WorkDone:
    if task.kind == "plan":
        from conductor.contract.schemas import load

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
    refused = []
    for edit in reply.data.get("files", []):
        rel = normalize(str(edit["path"]))
        if path_problem(str(edit["path"])) or not matches_allowed(rel, task.allowed_files):
            refused.append(rel)
            continue
        if edit.get("delete"):
            with contextlib.suppress(FileNotFoundError):
                (workspace / rel).unlink()
        else:
            atomic_write_text(workspace / rel, str(edit["content"]))
    changed = changed_files(workspace, task.allowed_files, before)
    note = f" Refused edits outside allowed_files: {', '.join(refused)}." if refused else ""
    summary = str(reply.data.get("summary", "")) + note
    return WorkDone("completed", changed, summary, None, None,
                    f"# {task.task_id}\n\n{summary}\n\nModel: {llm.model}. Files: {', '.join(changed) or 'none'}.\n")


class Agent:
    """Claims and executes tasks until told to stop."""

    def __init__(self, options: AgentOptions, out: Callable[[str], None] = print) -> None:
        self.options = options
        self.layout = ProjectLayout.at(options.root)
        self.out = out
        self.identity = f"{options.name}@{socket.gethostname()}:{os.getpid()}"
        self._llm: Any = None
        self.stopped = threading.Event()  # set from another thread to stop after the current task
        if options.command is None:
            self._llm = make_llm(self.layout.root)

    def _changes(self) -> Iterator[list[Path]]:
        """Yields the new pending task files (an empty list every poll interval without any)."""
        self.layout.handoff_dir.mkdir(parents=True, exist_ok=True)
        timeout_ms = max(10, int(self.options.poll_interval * 1000))
        try:
            from watchfiles import watch

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
            if self.options.command is not None:
                done = work_with_command(task, task_file, workspace, self.options.command)
            else:
                done = work_with_llm(task, workspace, self._llm)
        except Exception as exc:
            done = WorkDone("failed", [], "", f"agent error: {exc}", None, f"# {stem}\n\nAgent error: {exc}\n")
        if not task_file.exists():
            self.out(f"withdrawn {plan}/{fork}/{stem} (timed out before the result was written)")
            return
        if done.timed_out:
            # Past the task's timeout Conductor fails the step itself; a late result would only race it.
            self.out(f"timeout {plan}/{fork}/{stem}: command killed, no result written")
            return
        self._write(task_file, stem, done.status, done.files_changed, done.summary, done.error, done.plan,
                    done.explanation, started)
        self.out(f"done {plan}/{fork}/{stem} {done.status}")

    def _write(self, task_file: Path, stem: str, status: str, files: list[str], summary: str,
               error: str | None, plan: dict[str, Any] | None, explanation: str, started: str) -> None:
        folder = task_file.parent
        atomic_write_text(folder / f"{stem}.explanation.md", explanation)
        try:
            body = json.loads(task_file.read_bytes())
        except (OSError, ValueError):
            body = {}
        result = Result.answering(body if isinstance(body, dict) else {}, task_id=stem, status=status,
                                  files_changed=files, summary=summary, error=error, executor=self.identity,
                                  started_at=started, finished_at=utc_now(), plan=plan)
        atomic_write_text(folder / f"{stem}.result.json",
                          result.model_dump_json(indent=2, exclude_none=True) + "\n")
