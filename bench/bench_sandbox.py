"""Sandbox benchmark: what running an agent's process in bubblewrap costs, against running it bare.

    .venv/bin/python bench/bench_sandbox.py            # 200 runs of each
    .venv/bin/python bench/bench_sandbox.py --runs 50

Measured in the same run, so the figures compare on one machine at one moment:

* ``/bin/true`` started directly (the floor: fork + exec), then through :func:`conductor.sandbox.prepare`
  with ``network: allow`` and with ``network: deny`` (a network namespace of its own);
* applying 20 whole-file edits in-process (the floor) and through the sandboxed
  ``python -m conductor.sandbox.apply`` (a Python start-up inside bubblewrap).

Printed: p50 and p90 in milliseconds, and the overhead over the floor.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from conductor.sandbox import Mounts, SandboxSettings, prepare, probe
from conductor.sandbox.apply import apply_edits, apply_in_process


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def row(name: str, values: list[float], floor: list[float] | None) -> str:
    p50 = statistics.median(values)
    p90 = statistics.quantiles(values, n=10)[-1]
    extra = f"  +{p50 - statistics.median(floor):7.2f} ms over the floor" if floor else "  (floor)"
    return f"{name:<44} p50 {p50:8.2f} ms  p90 {p90:8.2f} ms{extra}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    available = probe()
    if not available.ok:
        print(f"bubblewrap unavailable: {available.reason}")
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        ws = Path(scratch) / "ws"
        ws.mkdir()
        mounts = Mounts(ws)

        def run(argv: list[str]) -> None:
            subprocess.run(argv, cwd=ws, check=True)

        allow = prepare(["/bin/true"], mounts, SandboxSettings(mode="required", network="allow")).argv
        deny = prepare(["/bin/true"], mounts, SandboxSettings(mode="required", network="deny")).argv
        bare = timed(lambda: run(["/bin/true"]), args.runs)
        print(f"bubblewrap {available.bwrap}, {args.runs} runs each")
        print(row("/bin/true, bare", bare, None))
        print(row("/bin/true in the sandbox (network allow)", timed(lambda: run(allow), args.runs), bare))
        print(row("/bin/true in the sandbox (network deny)", timed(lambda: run(deny), args.runs), bare))

        edits = [{"path": f"src/f{i}.py", "content": f"x = {i}\n" * 50} for i in range(20)]
        runs = max(10, args.runs // 10)
        floor = timed(lambda: apply_in_process(ws, edits, ["src/**"], []), runs)
        print(row(f"20 edits applied in-process ({runs} runs)", floor, None))
        sandboxed = timed(lambda: apply_edits(ws, edits, ["src/**"], [], settings=SandboxSettings(mode="required")),
                          runs)
        print(row(f"20 edits applied in the sandbox ({runs} runs)", sandboxed, floor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
