"""Hand-off benchmark: latency and throughput of the file contract with real agent processes.

    .venv/bin/python bench/bench_handoff.py                 # 300 tasks with 1, 4 and 16 agents, floor and Conductor
    .venv/bin/python bench/bench_handoff.py --tasks 200 --agents 1,4

For each agent count a fresh project (plain folder, default policy, no verification
commands) is created, that many ``conductor agent --command …`` processes are started, and
the tasks are handed off by ``2 × agents`` concurrent lanes (each lane hands off its next
task as soon as the previous one has a verdict; every task rewrites the lane's own file,
one line). Lanes are spread over ``--forks`` forks (default: one per agent, as ``explore``
runs forks side by side; all in the project folder). ``--forks 1`` puts every lane in one
fork, where the fork's audit log and provenance chain serialize the verdicts. Printed per run:

* hand-off latency p50/p99: result file written (its mtime) → verdict reached and the
  lane's next task written (the time Conductor adds between two steps);
* verdict latency p50/p99: result written → verdict (watch + verify + provenance + audit);
* throughput: tasks per second from the first task written to the last verdict, and its ratio to the
  floor's in the same run;
* CPU per task: this process (coordinator) plus every finished child (agents, their commands, git).

Each agent count runs twice: first the **floor** — the same agent processes, command and lanes over a
minimal rename-claim/result loop (the same task files and file watcher; no working copy per attempt,
no verification, provenance or audit) — then Conductor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conductor.handoff import HandoffCoordinator, TaskSpec
from conductor.handoff.tasks import prepare_task, publish_task
from conductor.handoff.watcher import HandoffWatcher
from conductor.policy import load_project_policy
from conductor.project.layout import ProjectLayout

COMMAND = 'printf "%s\\n" "$CONDUCTOR_TASK_ID" > "$CONDUCTOR_ALLOWED_FILES"'


def commit(root: Path) -> None:
    """Every attempt works in a copy of a commit: the project is a repository with one."""
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b",
           "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "start"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] if ordered else float("nan")


async def run(tasks: int, agents: int, root: Path, forks: int | None = None) -> dict[str, float]:
    (root / ".conductor").mkdir(parents=True)
    (root / "README.md").write_text("bench\n")
    commit(root)
    layout = ProjectLayout.at(root)
    procs = _agents(root, agents)
    lanes = max(1, 2 * agents)
    forks = forks or agents
    handoff_latency: list[float] = []
    verdict_latency: list[float] = []
    failed = 0
    reasons: dict[str, str] = {}
    counter = iter(range(1, tasks + 1))
    try:
        async with HandoffCoordinator(layout) as coord:
            # Let the agents start (imports) before the clock starts.
            warm = await coord.hand_off(TaskSpec("bench", "warmup", "warm up", ["warm.txt"]))
            assert warm.status == "completed", warm.reason

            async def lane(k: int) -> None:
                nonlocal failed
                pending_result: float | None = None
                for n in counter:
                    spec = TaskSpec("bench", f"f{k % forks}", f"lane {k} task {n}", [f"lane_{k}.txt"],
                                    task_id=f"step_{n:04d}")
                    outcome = await coord.hand_off(spec)
                    if pending_result is not None:
                        handoff_latency.append(outcome.task_written_at - pending_result)
                    if outcome.result_written_at is not None:
                        verdict_latency.append(_epoch(outcome.finished_at) - outcome.result_written_at)
                    pending_result = outcome.result_written_at
                    if outcome.status != "completed":
                        failed += 1
                        reasons[f"{outcome.reason_code}: {outcome.reason}"] = outcome.fork_id

            start = time.perf_counter()
            await asyncio.gather(*(lane(k) for k in range(lanes)))
            elapsed = time.perf_counter() - start
    finally:
        _stop(procs)
    for reason in reasons:
        print(f"  failure: {reason}", file=sys.stderr)
    return _figures(agents, lanes, forks, tasks, failed, elapsed, handoff_latency, verdict_latency)


async def floor(tasks: int, agents: int, root: Path, forks: int | None = None) -> dict[str, float]:
    """The floor: the same agent processes, command and lanes over a minimal rename-claim/result loop.

    Each task is the same contract file (built by :func:`conductor.handoff.tasks.prepare_task`, written
    atomically into ``pending/``); the loop waits for the result through the same file watcher, reads it
    and moves the three files to ``completed/``. No working copy per attempt (one folder per lane, made
    once), no verification, no provenance, no audit log, no git.
    """
    (root / ".conductor").mkdir(parents=True)
    (root / "README.md").write_text("bench\n")
    layout = ProjectLayout.at(root)
    procs = _agents(root, agents)
    lanes = max(1, 2 * agents)
    forks = forks or agents
    policy = load_project_policy(root)
    watcher = HandoffWatcher(layout.handoff_dir)
    handoff_latency: list[float] = []
    verdict_latency: list[float] = []
    failed = 0
    counter = iter(range(1, tasks + 1))

    async def one(spec: TaskSpec, workspace: Path) -> tuple[float, float, float]:
        written = prepare_task(layout, spec, policy, str(workspace))
        in_progress = written.path.parent.parent / "in_progress"
        result = in_progress / f"{written.task.task_id}.result.json"
        with watcher.subscribe([result]) as sub:
            publish_task(written)
            task_written = time.time()
            while True:
                sub.clear()
                try:
                    body = json.loads(result.read_bytes())
                    mtime = result.lstat().st_mtime
                    break
                except (OSError, ValueError):
                    await sub.wait(watcher.recheck_interval)
        done = written.path.parent.parent / "completed"
        for name in (written.path.name, result.name, f"{written.task.task_id}.explanation.md"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(in_progress / name, done / name)
        ok = body.get("nonce") == written.task.nonce and body.get("status") == "completed"
        return task_written, mtime, time.time() if ok else -1.0

    try:
        await watcher.start()
        warm = root / "lanes" / "warm"
        warm.mkdir(parents=True)
        await one(TaskSpec("bench", "warmup", "warm up", ["warm.txt"], task_id="step_0000"), warm)

        async def lane(k: int) -> None:
            nonlocal failed
            workspace = root / "lanes" / str(k)
            workspace.mkdir(parents=True)
            pending_result: float | None = None
            for n in counter:
                spec = TaskSpec("bench", f"f{k % forks}", f"lane {k} task {n}", [f"lane_{k}.txt"],
                                task_id=f"step_{n:04d}")
                task_written, result_written, finished = await one(spec, workspace)
                if pending_result is not None:
                    handoff_latency.append(task_written - pending_result)
                if finished < 0:
                    failed += 1
                else:
                    verdict_latency.append(finished - result_written)
                pending_result = result_written

        start = time.perf_counter()
        await asyncio.gather(*(lane(k) for k in range(lanes)))
        elapsed = time.perf_counter() - start
    finally:
        await watcher.stop()
        _stop(procs)
    return _figures(agents, lanes, forks, tasks, failed, elapsed, handoff_latency, verdict_latency)


def _agents(root: Path, agents: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-m", "conductor", "agent", "--root", str(root), "--command", COMMAND,
                              "--name", f"bench{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i in range(agents)]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _figures(agents: int, lanes: int, forks: int, tasks: int, failed: int, elapsed: float,
             handoff_latency: list[float], verdict_latency: list[float]) -> dict[str, float]:
    return {
        "agents": agents, "lanes": lanes, "forks": forks, "tasks": tasks, "failed": failed, "seconds": elapsed,
        "throughput": tasks / elapsed,
        "handoff_p50": pct(handoff_latency, 50) * 1000, "handoff_p99": pct(handoff_latency, 99) * 1000,
        "verdict_p50": pct(verdict_latency, 50) * 1000, "verdict_p99": pct(verdict_latency, 99) * 1000,
    }


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (agents, their commands, git): on two cores
    throughput can never beat 2 s / (CPU per task)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _epoch(iso: str) -> float:
    from conductor.handoff.audit import parse_ts

    return parse_ts(iso)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=300, help="tasks per run (default 300)")
    parser.add_argument("--agents", default="1,4,16", help="comma-separated agent counts (default 1,4,16)")
    parser.add_argument("--forks", type=int, default=None, help="forks the lanes are spread over (default: agents)")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor runs")
    args = parser.parse_args()
    print(f"hand-off, {args.tasks} tasks per run, load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'run':<10}{'agents':>7}{'forks':>6}{'failed':>7}{'tasks/s':>9}{'vs floor':>9}"
          f"{'hand-off p50/p99 ms':>21}{'verdict p50/p99 ms':>20}{'cpu ms/task':>12}")
    for count in [int(a) for a in args.agents.split(",")]:
        pair: dict[str, dict[str, float]] = {}
        for label, fn in (("floor", floor), ("conductor", run)):
            if label == "floor" and args.no_floor:
                continue
            tmp = Path(tempfile.mkdtemp(prefix="conductor-bench-"))
            cpu = _cpu_seconds()
            try:
                pair[label] = r = asyncio.run(fn(args.tasks, count, tmp / "proj", args.forks))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            r["cpu_ms"] = (_cpu_seconds() - cpu) / args.tasks * 1000
            ratio = f"{r['throughput'] / pair['floor']['throughput']:.2f}x" if "floor" in pair else "-"
            print(f"{label:<10}{r['agents']:>7}{r['forks']:>6}{r['failed']:>7}{r['throughput']:>9.1f}{ratio:>9}"
                  f"{r['handoff_p50']:>11.1f} /{r['handoff_p99']:>7.1f}"
                  f"{r['verdict_p50']:>11.1f} /{r['verdict_p99']:>6.1f}{r['cpu_ms']:>12.1f}",
                  flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
