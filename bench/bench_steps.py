"""Per-step overhead of a plan: what Conductor adds between one step's result and the next step's task.

    .venv/bin/python bench/bench_steps.py                      # N = 40, 160, 640 sequential steps
    .venv/bin/python bench/bench_steps.py --steps 10,100 --against 15942f1   # also the shared-tree engine

A real ``conductor build`` in handoff mode runs a plan of N sequential one-file steps (step k
depends on step k-1), answered by one real ``conductor agent --command`` process whose command
writes the step's file. For each step after the first, the overhead is the time from the
previous step's answer being written (the mtime of its explanation, which the agent writes just
before its result: the result file itself is rewritten by Conductor when archived) to this
step's task file being written (its ``task.created`` audit record): watch, judge, commit, merge,
sign, journal, seal the next attempt and write its task. The agent's own process time is outside
this window. Printed: the median and p90 per step, and the ratio to the smallest N (flat = 1.0).

``--against REV`` runs the same plans, in the same run, with the engine at git revision REV of this
repository (checked out into a temporary folder): for example the last engine whose steps shared
one working tree (``15942f1``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = ('test "$CONDUCTOR_TASK_KIND" = plan && cat "$BENCH_PLAN" || '
           'printf "%s\\n" "$CONDUCTOR_TASK_ID" > "$CONDUCTOR_ALLOWED_FILES"')


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] if ordered else float("nan")


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def project(root: Path, steps: int, env: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "conductor", "init", "."], cwd=root, env=env, check=True,
                   capture_output=True)
    (root / ".conductor" / "config.yaml").write_text("mode: handoff\nplanner: handoff\nforks: 1\n")
    (root / ".conductor" / "policy.yaml").write_text("behavior:\n  max_files_changed: 5\n")
    (root / "README.md").write_text("bench\n")
    git_env = {**env, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
               "GIT_COMMITTER_EMAIL": "b@b"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "start"]):
        subprocess.run(["git", *args], cwd=root, env=git_env, check=True, capture_output=True)
    plan = {"goal": "bench", "strategy": "default", "summary": "bench", "steps": [
        {"id": f"step_{i:03d}", "title": f"file {i}", "instruction": f"write f{i}.txt",
         "allowed_files": [f"f{i}.txt"], "depends_on": [f"step_{i - 1:03d}"] if i > 1 else [],
         "estimated_confidence": 0.95} for i in range(1, steps + 1)]}
    (root.parent / "plan.json").write_text(json.dumps(plan))
    return root


def overheads(root: Path) -> list[float]:
    """Answer of step k written (mtime) → task of step k+1 written, in seconds."""
    handoff = root / ".conductor" / "handoff"
    (fork,) = [p for p in handoff.glob("plan_*/fork_*") if p.is_dir()]
    created = {}
    for line in (fork / "audit.log").read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "task.created" and record["task_id"] != "step_000":
            created[record["task_id"]] = ts(record["ts"])
    out = []
    ids = sorted(created)
    for prev, nxt in itertools.pairwise(ids):
        # The agent writes the explanation, then the result; Conductor keeps the judged result bytes by
        # writing them again, so the explanation (moved, its mtime kept) dates the agent's answer.
        answered = fork / "completed" / f"{prev}.explanation.md"
        out.append(created[nxt] - answered.stat().st_mtime)
    return out


def run(steps: int, workdir: Path, engine: Path | None, profile: Path | None = None) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "CONDUCTOR_", "GIT_"))}
    if engine is not None:
        env["PYTHONPATH"] = str(engine / "server")
    root = project(workdir / "proj", steps, env)
    env["BENCH_PLAN"] = str(workdir / "plan.json")
    agent = subprocess.Popen([sys.executable, "-m", "conductor", "agent", "--root", str(root), "--command", COMMAND],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = time.monotonic()
        prof = ["-m", "cProfile", "-o", str(profile / f"build-{steps}.prof")] if profile is not None else []
        done = subprocess.run([sys.executable, *prof, "-m", "conductor", "build", "bench", "--json"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=60 + steps * 5)
        wall = time.monotonic() - started
    finally:
        agent.terminate()
        agent.wait(30)
    if done.returncode != 0:
        raise SystemExit(f"build failed ({steps} steps): {done.stderr[-2000:]}")
    values = overheads(root)
    return {"steps": steps, "median_ms": statistics.median(values) * 1000, "p90_ms": pct(values, 90) * 1000,
            "wall_s": wall}


def checkout(rev: str, into: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(into), rev], cwd=REPO, check=True,
                   capture_output=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="40,160,640", help="comma-separated plan lengths")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="run each build under cProfile, writing DIR/build-N.prof")
    parser.add_argument("--against", metavar="REV", help="also run the engine at this git revision")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.steps.split(",")]
    load = os.getloadavg()[0]
    print(f"per-step overhead (result written → next task written), one agent, load average {load:.2f}")
    engines: list[tuple[str, Path | None]] = [("this checkout", None)]
    # Not under /tmp: the agent's sandbox has a private /tmp, where the plan file would be hidden from it.
    cache = Path.home() / ".cache" / "conductor-bench"
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-steps-", dir=cache))
    try:
        if args.against:
            engines.append((f"engine at {args.against}", checkout(args.against, tmp / "engine")))
        print(f"{'engine':<28}{'steps':>7}{'median ms':>11}{'p90 ms':>9}{'vs first':>10}{'wall s':>9}")
        for label, engine in engines:
            first = None
            for n in sizes:
                figures = run(n, tmp / f"{label.replace(' ', '_')}-{n}", engine, args.profile)
                first = first or figures["median_ms"]
                print(f"{label:<28}{n:>7}{figures['median_ms']:>11.1f}{figures['p90_ms']:>9.1f}"
                      f"{figures['median_ms'] / first:>10.2f}{figures['wall_s']:>9.1f}", flush=True)
    finally:
        if args.against:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "engine")], cwd=REPO,
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
