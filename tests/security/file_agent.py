"""A scripted file agent for the trust tests: a separate process that speaks the file contract
(docs/handoff.md) the way an IDE agent does — and, when its script says so, misbehaves.

    python file_agent.py PROJECT_ROOT SCRIPT_JSON [--name NAME] [--max-tasks N] [--idle-exit SECONDS]

The script: ``{"plan": <plan document for planning tasks>, "steps": {"step_001": {"<attempt>" or "*":
{"files": {path: text}, "append": {project-relative path: text}, "nonce": "wrong", "name": NAME}}}}``.
``files`` are written in the task's workspace; ``append`` writes *outside* it, into the project (what
a hostile agent does); ``nonce: wrong`` answers with another attempt's nonce. After each result it
waits for the attempt's verdict file and prints one JSON line: task_id, attempt, verdict, reason_code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any


def pending(root: Path) -> list[Path]:
    found = list((root / ".conductor" / "handoff").glob("plan_*/fork_*/pending/step_*.task.json"))
    return sorted(found, key=lambda p: int(p.name[5:].split(".")[0]))


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def do(task: dict[str, Any], script: dict[str, Any], root: Path) -> tuple[dict[str, Any], str]:
    """Carry out the script for this task and attempt; the result's fields and the executor's name."""
    if task["kind"] == "plan":
        goal = re.search(r"Goal: (.*)", task["instruction"])
        return {"plan": {**script["plan"], "goal": goal.group(1).strip() if goal else "goal"}, "files_changed": []}, ""
    steps = script["steps"].get(task["task_id"], {})
    action = steps.get(str(task["attempt"]), steps.get("*", {}))
    for rel, text in action.get("files", {}).items():
        target = Path(task["workspace"]) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for rel, text in action.get("append", {}).items():
        with open(root / rel, "a", encoding="utf-8") as fh:
            fh.write(text)
    fields: dict[str, Any] = {"files_changed": sorted(action.get("files", {}))}
    if action.get("nonce") == "wrong":
        fields["nonce"] = "0" * 32
    return fields, action.get("name", "")


def verdict_of(task: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + task["timeout_seconds"] + 120
    while time.monotonic() < deadline:
        try:
            verdict = json.loads(Path(task["verdict_file"]).read_text(encoding="utf-8"))
            if verdict["attempt"] == task["attempt"] and verdict["nonce"] == task["nonce"]:
                return dict(verdict)
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"no verdict in {task['verdict_file']}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("script", type=Path)
    parser.add_argument("--name", default=f"file-agent:{os.getpid()}")
    parser.add_argument("--max-tasks", type=int, default=0)
    parser.add_argument("--idle-exit", type=float, default=120)
    args = parser.parse_args()
    root = args.root.resolve()
    script = json.loads(args.script.read_text(encoding="utf-8"))
    done, idle_since = 0, time.monotonic()
    while time.monotonic() - idle_since < args.idle_exit and (not args.max_tasks or done < args.max_tasks):
        for path in pending(root):
            claimed = path.parent.parent / "in_progress" / path.name
            try:
                os.rename(path, claimed)
            except FileNotFoundError:
                continue
            task = json.loads(claimed.read_text(encoding="utf-8"))
            fields, name = do(task, script, root)
            result = {"contract_version": "2.0", "task_id": task["task_id"], "nonce": task["nonce"],
                      "status": "completed", "summary": "done as scripted", "executor": name or args.name, **fields}
            stem = claimed.parent / task["task_id"]
            write_atomically(stem.with_suffix(".explanation.md"), f"# {task['task_id']}\n\nScripted.\n")
            write_atomically(stem.with_suffix(".result.json"), json.dumps(result, indent=2) + "\n")
            verdict = verdict_of(task)
            print(json.dumps({"task_id": task["task_id"], "attempt": task["attempt"], "verdict": verdict["verdict"],
                              "reason_code": verdict["reason_code"], "reason": verdict["reason"]}), flush=True)
            done, idle_since = done + 1, time.monotonic()
            break
        else:
            time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
