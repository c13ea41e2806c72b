"""Hand-off benchmark: latency and throughput of the file contract with real agent processes.

    .venv/bin/python bench/bench_handoff.py                 # 1,000 tasks with 1, 4 and 16 agents
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
* throughput: tasks per second from the first task written to the last verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conductor.handoff import HandoffCoordinator, TaskSpec
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
    procs = [subprocess.Popen([sys.executable, "-m", "conductor", "agent", "--root", str(root), "--command", COMMAND,
                               "--name", f"bench{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(agents)]
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
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    for reason in reasons:
        print(f"  failure: {reason}", file=sys.stderr)
    return {
        "agents": agents, "lanes": lanes, "forks": forks, "tasks": tasks, "failed": failed, "seconds": elapsed,
        "throughput": tasks / elapsed,
        "handoff_p50": pct(handoff_latency, 50) * 1000, "handoff_p99": pct(handoff_latency, 99) * 1000,
        "verdict_p50": pct(verdict_latency, 50) * 1000, "verdict_p99": pct(verdict_latency, 99) * 1000,
    }


def _epoch(iso: str) -> float:
    from conductor.handoff.audit import parse_ts

    return parse_ts(iso)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per run (default 1000)")
    parser.add_argument("--agents", default="1,4,16", help="comma-separated agent counts (default 1,4,16)")
    parser.add_argument("--forks", type=int, default=None, help="forks the lanes are spread over (default: agents)")
    args = parser.parse_args()
    rows = []
    for count in [int(a) for a in args.agents.split(",")]:
        tmp = Path(tempfile.mkdtemp(prefix="conductor-bench-"))
        try:
            rows.append(asyncio.run(run(args.tasks, count, tmp / "proj", args.forks)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        r = rows[-1]
        print(f"agents={r['agents']:>2} lanes={r['lanes']:>2} forks={r['forks']:>2} tasks={r['tasks']} "
              f"failed={r['failed']} "
              f"time={r['seconds']:.1f}s throughput={r['throughput']:.1f} tasks/s "
              f"handoff latency p50={r['handoff_p50']:.1f}ms p99={r['handoff_p99']:.1f}ms "
              f"verdict latency p50={r['verdict_p50']:.1f}ms p99={r['verdict_p99']:.1f}ms", flush=True)


if __name__ == "__main__":
    main()
