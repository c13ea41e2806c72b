"""Start-up time of the three doors: ``conductor --version``, ``conductor status``, the language server.

Usage::

    .venv/bin/python bench/bench_startup.py [--runs 7] [--project DIR] [--baseline CHECKOUT]

Each figure is the median wall time of ``--runs`` fresh processes. The floor, measured in the
same run, is a bare ``python -c pass`` of the same interpreter. With ``--baseline`` (another
checkout of this repository, e.g. ``git worktree add /tmp/base <rev>``) the same commands run
from that checkout's ``server/`` too, interleaved with ours, on a project it built itself. ``status`` runs on a project
that ``scripts/demo.sh`` built (a real plan with two steps; built once into a temporary folder
unless ``--project`` names one). The language server is timed from spawning ``conductor lsp``
to its ``initialize`` answer, and to the "ready" log line it sends after ``initialized``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def code_env(server: Path | None) -> dict[str, str]:
    """The environment that runs ``conductor`` from ``server`` (another checkout), or from this one."""
    env = dict(os.environ)
    if server is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(server), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def _frame(message: dict[str, object]) -> bytes:
    body = json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def _read(proc: subprocess.Popen[bytes]) -> dict[str, object]:
    assert proc.stdout is not None
    length = 0
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the language server closed its output")
        if line in (b"\r\n", b"\n"):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return dict(json.loads(proc.stdout.read(length)))


def lsp_start(cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Seconds from spawn to the initialize answer, and to the server's "ready" log line."""
    started = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "conductor"), "lsp"], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None
    try:
        proc.stdin.write(_frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": os.getpid(), "rootUri": cwd.as_uri(), "capabilities": {}}}))
        proc.stdin.flush()
        while _read(proc).get("id") != 1:
            pass
        initialized = time.perf_counter() - started
        proc.stdin.write(_frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        proc.stdin.flush()
        while True:
            message = _read(proc)
            params = message.get("params")
            if message.get("method") == "window/logMessage" and isinstance(params, dict) \
                    and "ready" in str(params.get("message")):
                break
        ready = time.perf_counter() - started
        proc.stdin.write(_frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
        proc.stdin.write(_frame({"jsonrpc": "2.0", "method": "exit"}))
        proc.stdin.flush()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    return initialized, ready


def demo_project(checkout: Path = REPO, server: Path | None = None) -> Path:
    target = Path(tempfile.mkdtemp(prefix="conductor-startup-")) / "demo"
    env = {**code_env(server), "CONDUCTOR": str(BIN / "conductor"), "PYTHON": sys.executable, "DEMO_DIR": str(target)}
    subprocess.run(["bash", str(checkout / "scripts" / "demo.sh")], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return target


COMMANDS = ("conductor --version", "conductor status", "conductor lsp → initialize answer", "conductor lsp → ready")


def measure(project: Path, env: dict[str, str], rows: dict[str, list[float]], suffix: str = "") -> None:
    rows.setdefault(f"conductor --version{suffix}", []).append(timed([str(BIN / "conductor"), "--version"], project,
                                                                     env))
    rows.setdefault(f"conductor status{suffix}", []).append(timed([str(BIN / "conductor"), "status"], project, env))
    initialized, ready = lsp_start(project, env)
    rows.setdefault(f"conductor lsp → initialize answer{suffix}", []).append(initialized)
    rows.setdefault(f"conductor lsp → ready{suffix}", []).append(ready)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--project", type=Path, help="a built project (default: scripts/demo.sh builds one)")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure beside this one")
    args = parser.parse_args()
    project = args.project or demo_project()
    base_server = args.baseline / "server" if args.baseline else None
    base_project = demo_project(args.baseline, base_server) if args.baseline else None
    rows: dict[str, list[float]] = {"python -c pass (floor)": []}
    for _ in range(args.runs):  # interleaved, so a burst of load hits every row alike
        rows["python -c pass (floor)"].append(timed([sys.executable, "-c", "pass"], project))
        measure(project, code_env(None), rows)
        if base_project is not None:
            measure(base_project, code_env(base_server), rows, " (baseline)")
    print(f"{'command':48} {'median ms':>10} {'min ms':>8} {'max ms':>8}   (runs: {args.runs}, "
          f"load average {os.getloadavg()[0]:.1f})")
    order = ["python -c pass (floor)"] + [n for c in COMMANDS for n in (c, f"{c} (baseline)") if n in rows]
    for name in order:
        values = rows[name]
        print(f"{name:48} {statistics.median(values) * 1000:10.0f} {min(values) * 1000:8.0f} "
              f"{max(values) * 1000:8.0f}")


if __name__ == "__main__":
    main()
