"""Start-up of the three doors against their floors: the CLI, the language server, a long plan.

Usage::

    .venv/bin/python bench/bench_startup.py [--runs 7] [--steps 640] [--project DIR] [--baseline CHECKOUT]

Every figure is the median wall time of ``--runs`` fresh processes, interleaved (one run of
every row, then the next), so a burst of load hits every row alike. Rows and their floors:

* ``python -c pass``: the interpreter alone, the floor of every command;
* ``conductor --version`` (target ≤ 0.1 s);
* ``conductor status`` and ``conductor validate`` on a long plan (targets ≤ 0.3 s and ≤ 0.5 s):
  a real ``conductor build`` of ``--steps`` sequential one-file steps answered by a real
  ``conductor agent --command`` (640 steps: 3,846 journal events, 1,926 files under
  ``.conductor``). Building it takes minutes, so it is built once into
  ``~/.cache/conductor-bench/startup-<steps>/`` (``CONDUCTOR_BENCH_CACHE`` moves it) and reused;
  ``validate`` is timed as a user runs it again (unchanged task, result and provenance files
  skipped by content hash) and with ``--no-cache`` (every file validated, as in a fresh clone);
* ``import conductor.lsp.server`` beside ``import pygls.lsp.server`` + ``lsprotocol.types``;
* the language server, spawn → ``initialize`` answer and spawn → first diagnostics of a
  12-line ``policy.yaml`` (``didOpen`` right after ``initialized``), beside the floor: a bare
  pygls server that publishes one diagnostic (``bench/lsp_floor.py``). Target: Conductor ≤
  floor + 150 ms. Then → the server's "ready" log line.

``--baseline CHECKOUT`` (another checkout of this repository, e.g. ``git worktree add
/tmp/base <rev>``) runs the Conductor rows from that checkout's ``server/`` too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_steps import project  # the long plan's project, as bench_steps.py builds it

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FLOOR_SERVER = Path(__file__).resolve().parent / "lsp_floor.py"
CACHE = Path(os.environ.get("CONDUCTOR_BENCH_CACHE", Path.home() / ".cache" / "conductor-bench"))
AGENT_COMMAND = ('test "$CONDUCTOR_TASK_KIND" = plan && cat "$BENCH_PLAN" || '
                 'printf "%s\\n" "$CONDUCTOR_TASK_ID" > "$CONDUCTOR_ALLOWED_FILES"')
POLICY = """file_rules:
  protected_patterns:
    - "*.lock"
  protected_paterns: []
behavior:
  max_diff_lines: -5
  timeout_seconds: soon
  max_repairs: 2
verification:
  - name: unit tests
    run: python -m pytest -q
global_constraints: []
"""
"""A 12-line policy with three errors (unknown key, range, type): the first diagnostics are non-empty."""


def compiled(server: Path) -> None:
    """Write the package's bytecode, as ``pip install`` does for a wheel: a start-up measured under
    ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module of ours on every run."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(server / "conductor")], check=True,
                   stdout=subprocess.DEVNULL)


def code_env(server: Path | None) -> dict[str, str]:
    """The environment that runs ``conductor`` from ``server`` (another checkout), or from this one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "CONDUCTOR_", "GIT_"))}
    if server is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(server), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-1000:]}")
    return elapsed


# ------------------------------------------------------------------------------------ LSP


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (``/proc/<pid>/stat``, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lsp_start(argv: list[str], root: Path, env: dict[str, str], ready_line: bool) -> tuple[float, float, float, float]:
    """Seconds from spawn to the initialize answer, to the first non-empty diagnostics of the
    policy (opened right after ``initialized``), to the "ready" log line (0 when not asked), and
    the CPU seconds the server had used when its first diagnostics arrived (less sensitive to the
    machine's load than wall time)."""
    policy = root / ".conductor" / "policy.yaml"
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env)
    assert proc.stdin is not None
    initialized = diagnosed = ready = cpu = 0.0
    try:
        proc.stdin.write(_frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": {},
            "workspaceFolders": [{"uri": root.as_uri(), "name": "bench"}]}}))
        proc.stdin.flush()
        while _read(proc).get("id") != 1:
            pass
        initialized = time.perf_counter() - started
        proc.stdin.write(_frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        proc.stdin.write(_frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": policy.as_uri(), "languageId": "yaml", "version": 1, "text": policy.read_text()}}}))
        proc.stdin.flush()
        while not (diagnosed and (ready or not ready_line)):
            message = _read(proc)
            params = message.get("params")
            if not isinstance(params, dict):
                continue
            if message.get("method") == "textDocument/publishDiagnostics" and params.get("diagnostics") \
                    and not diagnosed:
                diagnosed = time.perf_counter() - started
                cpu = cpu_seconds(proc.pid)
            elif message.get("method") == "window/logMessage" and "ready" in str(params.get("message")):
                ready = time.perf_counter() - started
        proc.stdin.write(_frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
        proc.stdin.write(_frame({"jsonrpc": "2.0", "method": "exit"}))
        proc.stdin.flush()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return initialized, diagnosed, ready, cpu


# ----------------------------------------------------------------------------- projects


def small_project(env: dict[str, str]) -> Path:
    root = Path(tempfile.mkdtemp(prefix="conductor-startup-")) / "small"
    root.mkdir()
    subprocess.run([str(BIN / "conductor"), "init", "."], cwd=root, env=env, check=True, capture_output=True)
    (root / ".conductor" / "policy.yaml").write_text(POLICY)
    return root


def long_plan(steps: int, rebuild: bool = False) -> Path:
    """A project whose one plan ran ``steps`` sequential one-file steps (built once, then reused)."""
    work = CACHE / f"startup-{steps}"
    root = work / "proj"
    if (work / "built").exists() and not rebuild:
        return root
    shutil.rmtree(work, ignore_errors=True)  # outside /tmp: the agent's sandbox keeps /tmp private
    env = code_env(None)
    print(f"building a plan of {steps} steps into {work} (once; takes minutes)…", file=sys.stderr, flush=True)
    project(root, steps, env)  # the same project bench_steps.py builds; its plan in work/plan.json
    env["BENCH_PLAN"] = str(work / "plan.json")
    agent = subprocess.Popen([sys.executable, "-m", "conductor", "agent", "--root", str(root), "--command",
                              AGENT_COMMAND], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = subprocess.run([sys.executable, "-m", "conductor", "build", "bench", "--json"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=120 + steps * 5)
    finally:
        agent.terminate()
        agent.wait(30)
    if done.returncode != 0:
        raise SystemExit(f"building the long plan failed: {done.stderr[-2000:]}")
    (work / "built").write_text("ok\n")
    return root


def plan_size(root: Path) -> tuple[int, int]:
    """(journal events, files under .conductor) of a project."""
    events = sum(len(p.read_bytes().splitlines()) for p in (root / ".conductor" / "plans").glob("*/journal.jsonl"))
    files = sum(len(names) for _, _, names in os.walk(root / ".conductor"))
    return events, files


# ------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--steps", type=int, default=640, help="steps of the long plan (640: 3,846 events)")
    parser.add_argument("--project", type=Path, help="a built project to use as the long plan instead")
    parser.add_argument("--rebuild", action="store_true", help="build the long plan again")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure beside this one")
    args = parser.parse_args()

    big = args.project or long_plan(args.steps, args.rebuild)
    events, files = plan_size(big)
    servers: dict[str, Path | None] = {"": None}
    if args.baseline:
        servers[" (baseline)"] = args.baseline / "server"
    for server in servers.values():
        compiled(server or REPO / "server")
    small = small_project(code_env(None))
    rows: dict[str, list[float]] = {}

    def add(name: str, measure: Callable[[], float]) -> None:
        rows.setdefault(name, []).append(measure())

    conductor = str(BIN / "conductor")
    python = sys.executable
    for server in servers.values():  # fill the validation cache as a user's earlier run would have
        timed([conductor, "validate"], big, code_env(server), ok=(0, 1))
    for _ in range(args.runs):
        add("python -c pass (floor)", lambda: timed([python, "-c", "pass"], small))
        for suffix, server in servers.items():
            env = code_env(server)
            add(f"conductor --version{suffix}", lambda env=env: timed([conductor, "--version"], small, env))
            add(f"conductor status{suffix}", lambda env=env: timed([conductor, "status"], big, env))
            add(f"conductor validate --no-cache (every file){suffix}",
                lambda env=env: timed([conductor, "validate", "--no-cache"], big, env, ok=(0, 1)))
            add(f"conductor validate{suffix}", lambda env=env: timed([conductor, "validate"], big, env, ok=(0, 1)))
        add("import pygls.lsp.server, lsprotocol.types (floor)",
            lambda: timed([python, "-c", "import pygls.lsp.server, lsprotocol.types"], small))
        for suffix, server in servers.items():
            add(f"import conductor.lsp.server{suffix}",
                lambda server=server: timed([python, "-c", "import conductor.lsp.server"], small, code_env(server)))
        floor = lsp_start([python, str(FLOOR_SERVER)], small, code_env(None), ready_line=False)
        rows.setdefault("pygls floor server → initialize answer", []).append(floor[0])
        rows.setdefault("pygls floor server → first diagnostics", []).append(floor[1])
        rows.setdefault("pygls floor server, CPU until first diagnostics", []).append(floor[3])
        for suffix, server in servers.items():
            ours = lsp_start([conductor, "lsp"], small, code_env(server), ready_line=True)
            rows.setdefault(f"conductor lsp → initialize answer{suffix}", []).append(ours[0])
            rows.setdefault(f"conductor lsp → first diagnostics{suffix}", []).append(ours[1])
            rows.setdefault(f"conductor lsp → ready{suffix}", []).append(ours[2])
            rows.setdefault(f"conductor lsp, CPU until first diagnostics{suffix}", []).append(ours[3])

    median = {name: statistics.median(values) * 1000 for name, values in rows.items()}
    print(f"long plan: {events:,} journal events, {files:,} files under .conductor ({big}); "
          f"runs: {args.runs}; load average {os.getloadavg()[0]:.1f} (before: see bench header)")
    print(f"{'command':56} {'median ms':>10} {'min ms':>8} {'max ms':>8}  target")
    targets = {
        "conductor --version": "≤ 100",
        "conductor status": "≤ 300",
        "conductor validate": "≤ 500",
        "conductor lsp → first diagnostics":
            f"≤ floor + 150 = {median['pygls floor server → first diagnostics'] + 150:.0f}",
        "conductor lsp, CPU until first diagnostics":
            f"≤ floor + 150 = {median['pygls floor server, CPU until first diagnostics'] + 150:.0f}",
    }
    for name, values in rows.items():
        print(f"{name:56} {median[name]:10.0f} {min(values) * 1000:8.0f} {max(values) * 1000:8.0f}  "
              f"{targets.get(name, '')}")
    added = median["conductor lsp → first diagnostics"] - median["pygls floor server → first diagnostics"]
    cpu = (median["conductor lsp, CPU until first diagnostics"]
           - median["pygls floor server, CPU until first diagnostics"])
    print(f"\nconductor lsp adds {added:.0f} ms of wall time and {cpu:.0f} ms of CPU time to the floor's first "
          "diagnostics (CPU time is what a loaded machine distorts least)")


if __name__ == "__main__":
    main()
