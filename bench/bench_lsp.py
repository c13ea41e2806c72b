"""Conductor's language server against yaml-language-server 2.0.0 on the same policy and schema.

Usage::

    .venv/bin/python bench/bench_lsp.py [--edits 50] [--large-lines 5000] [--json out.json]

yaml-language-server is installed with npm into ~/.cache/conductor-bench/yls (once; reused
after). Both servers get the same ``.conductor/policy.yaml`` text, whose first line points
yaml-language-server at ``schemas/policy.schema.json`` (the published schema; Conductor uses
the same file). For each size — small (~15 lines) and large (~5,000 lines) — it measures:

* start-up → first diagnostics: from spawning the server to the first diagnostics of the file;
* edit → diagnostics latency (p50/p90 over ``--edits`` edits): each edit adds or removes an
  unknown key, and the clock stops at the first diagnostics that reflect it;
* peak RSS of the server process (VmHWM).

It prints the two servers side by side, and the diagnostics each found in the small file.
Start-up is also measured against its floor, in the same run: a bare pygls server that
publishes one diagnostic (``bench/lsp_floor.py``); Conductor's target is the floor + 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FLOOR_SERVER = Path(__file__).resolve().parent / "lsp_floor.py"
SCHEMA = REPO / "schemas" / "policy.schema.json"
YLS_DIR = Path(os.environ.get("CONDUCTOR_BENCH_CACHE", Path.home() / ".cache" / "conductor-bench")) / "yls"
YLS_VERSION = "2.0.0"
YLS_BIN = YLS_DIR / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"


def ensure_yls() -> Path:
    """Install yaml-language-server@2.0.0 into the cache folder unless it is there already."""
    package = YLS_DIR / "node_modules" / "yaml-language-server" / "package.json"
    if package.exists() and json.loads(package.read_text())["version"] == YLS_VERSION:
        return YLS_BIN
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed to install yaml-language-server (apt-get install -y npm)")
    YLS_DIR.mkdir(parents=True, exist_ok=True)
    if not (YLS_DIR / "package.json").exists():
        subprocess.run(["npm", "init", "-y"], cwd=YLS_DIR, check=True, capture_output=True)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", f"yaml-language-server@{YLS_VERSION}"],
                   cwd=YLS_DIR, check=True)
    return YLS_BIN


def policy_text(lines: int) -> tuple[str, int]:
    """A policy with three errors (unknown key, type, range), padded to ``lines``; returns (text, edit line)."""
    head = [f"# yaml-language-server: $schema={SCHEMA.as_uri()}",
            "file_rules:",
            "  protected_patterns:",
            '    - "*.lock"',
            '    - "migrations/*"',
            "  protected_paterns: []",
            "behavior:",
            "  max_diff_lines: -5",
            "  timeout_seconds: soon",
            "  max_repairs: 2",
            "verification:",
            "  - name: unit tests",
            "    run: python -m pytest -q",
            "global_constraints:"]
    body = [f"  - Keep change number {i} small and tested" for i in range(max(1, lines - len(head) - 1))]
    text = "\n".join([*head, *body]) + "\n"
    return text, len(head) + len(body)  # the edit toggles an extra top-level key on the last line


class Client:
    """A minimal LSP client over stdio: enough to open a file, edit it and read diagnostics."""

    def __init__(self, cmd: list[str], root: Path, settings: dict[str, Any]) -> None:
        self.cmd, self.root, self.settings = cmd, root, settings
        self.proc: asyncio.subprocess.Process | None = None
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.diagnostics: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> float:
        started = time.perf_counter()
        self.proc = await asyncio.create_subprocess_exec(
            *self.cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, cwd=self.root)
        self.reader = asyncio.create_task(self._read())
        await self.request("initialize", {
            "processId": os.getpid(), "rootUri": self.root.as_uri(),
            "workspaceFolders": [{"uri": self.root.as_uri(), "name": "bench"}],
            "capabilities": {"textDocument": {"publishDiagnostics": {}, "synchronization": {"didSave": True}},
                             "workspace": {"configuration": True}},
            "initializationOptions": self.settings})
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": self.settings})
        return started

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def request(self, method: str, params: Any) -> Any:
        self.next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return await asyncio.wait_for(future, 60)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout
        while True:
            length = 0
            while True:
                line = await out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(await out.readexactly(length))
            now = time.perf_counter()
            if "id" in message and "method" in message:  # a request from the server
                self._send({"jsonrpc": "2.0", "id": message["id"], "result": self._answer(message)})
            elif "id" in message:
                future = self.pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message.get("result"))
            elif message.get("method") == "textDocument/publishDiagnostics":
                await self.diagnostics.put((now, message["params"]))

    def _answer(self, message: dict[str, Any]) -> Any:
        if message["method"] == "workspace/configuration":
            return [self.settings.get(item.get("section", ""), None) if item.get("section") else self.settings
                    for item in message["params"]["items"]]
        return None

    async def diagnostics_for(self, uri: str, accept: Any, timeout: float = 60) -> tuple[float, list[Any]]:
        deadline = time.perf_counter() + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no matching diagnostics for {uri}")
            when, params = await asyncio.wait_for(self.diagnostics.get(), left)
            if params["uri"] == uri and accept(params["diagnostics"]):
                return when, params["diagnostics"]

    def peak_rss_mb(self) -> float:
        assert self.proc is not None
        pids = [self.proc.pid, *_children(self.proc.pid)]
        total = 0
        for pid in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        return total / 1024

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.request("shutdown", None), 5)
            self.notify("exit", None)
        if self.proc is not None:
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
        if self.reader is not None:
            self.reader.cancel()


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def measure(name: str, cmd: list[str], settings: dict[str, Any], text: str, edit_line: int,
                  edits: int, workdir: Path) -> dict[str, Any]:
    root = workdir / name
    policy = root / ".conductor" / "policy.yaml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(text, encoding="utf-8")
    uri = policy.as_uri()
    client = Client(cmd, root, settings)
    started = await client.start()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1,
                                                            "text": text}})
    when, first = await client.diagnostics_for(uri, lambda d: len(d) > 0)
    startup = when - started
    base_count = len(first)
    latencies = []
    for version in range(2, edits + 2):
        # every text is new (no server can answer from a cache): add a uniquely named unknown
        # key, then remove it again
        extra = version % 2 == 0
        line = f"extra_key_{version}: 1\n"
        expected = base_count + (1 if extra else 0)
        sent = time.perf_counter()
        client.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": {"line": edit_line, "character": 0},
                                          "end": {"line": edit_line + (0 if extra else 1), "character": 0}},
                                "text": line if extra else ""}]})
        when, _diags = await client.diagnostics_for(uri, lambda d, n=expected: len(d) == n)
        latencies.append((when - sent) * 1000)
    rss = client.peak_rss_mb()
    await client.stop()
    latencies.sort()
    return {
        "startup_ms": startup * 1000,
        "p50_ms": statistics.median(latencies),
        "p90_ms": latencies[int(len(latencies) * 0.9) - 1],
        "rss_mb": rss,
        "diagnostics": [(d["range"]["start"]["line"] + 1, d.get("message", "")) for d in first],
    }


async def floor_startup(text: str, workdir: Path, name: str) -> float:
    """Milliseconds from spawning the pygls floor server to its first diagnostics of the same text."""
    root = workdir / name
    policy = root / ".conductor" / "policy.yaml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(text, encoding="utf-8")
    client = Client([sys.executable, str(FLOOR_SERVER)], root, {})
    started = await client.start()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": policy.as_uri(), "languageId": "yaml",
                                                            "version": 1, "text": text}})
    when, _ = await client.diagnostics_for(policy.as_uri(), lambda d: len(d) > 0)
    await client.stop()
    return (when - started) * 1000


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--large-lines", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    yls = ensure_yls()
    node = shutil.which("node") or "node"
    servers = {
        "conductor": ([sys.executable, "-m", "conductor", "lsp"], {"conductor": {}}),
        "yaml-language-server": ([node, str(yls), "--stdio"], {"yaml": {
            "validate": True, "hover": True, "completion": True, "schemaStore": {"enable": False},
            "schemas": {SCHEMA.as_uri(): ["**/.conductor/policy.yaml"]}}}),
    }
    sizes = {"small": policy_text(15), "large": policy_text(args.large_lines)}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="conductor-bench-") as tmp:
        for size, (text, edit_line) in sizes.items():
            for name, (cmd, settings) in servers.items():
                results.setdefault(size, {})[name] = await measure(
                    f"{name}-{size}", cmd, settings, text, edit_line, args.edits, Path(tmp))
            results[size]["floor"] = {"startup_ms": await floor_startup(text, Path(tmp), f"floor-{size}")}
    print(f"policy.yaml: small = {len(sizes['small'][0].splitlines())} lines, "
          f"large = {len(sizes['large'][0].splitlines())} lines; {args.edits} edits each\n")
    header = f"{'':<8}{'metric':<30}{'conductor':>14}{'yaml-language-server':>22}{'ratio':>9}"
    print(header)
    print("-" * len(header))
    for size in sizes:
        ours, theirs = results[size]["conductor"], results[size]["yaml-language-server"]
        for key, label in (("startup_ms", "start-up → diagnostics (ms)"), ("p50_ms", "edit → diagnostics p50 (ms)"),
                           ("p90_ms", "edit → diagnostics p90 (ms)"), ("rss_mb", "peak RSS (MB)")):
            ratio = theirs[key] / ours[key] if ours[key] else float("inf")
            print(f"{size:<8}{label:<30}{ours[key]:>14.1f}{theirs[key]:>22.1f}{ratio:>8.1f}×")
    print("\nStart-up → first diagnostics against the floor (a bare pygls server publishing one diagnostic):")
    for size in sizes:
        ours, floor = results[size]["conductor"]["startup_ms"], results[size]["floor"]["startup_ms"]
        print(f"  {size:<6} conductor {ours:8.1f} ms   floor {floor:8.1f} ms   conductor adds {ours - floor:7.1f} ms "
              f"(target ≤ 150)")
    print(f"(load average {os.getloadavg()[0]:.1f})")
    print("\nDiagnostics in the small file (line: message):")
    for name in servers:
        print(f"  {name}:")
        for line, message in results["small"][name]["diagnostics"]:
            print(f"    {line}: {message}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
