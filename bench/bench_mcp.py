"""Claim → submit → verdict round trip over MCP next to the same over files (the reference agent path).

Run: ``.venv/bin/python bench/bench_mcp.py [--n 40]``

One throw-away project (``conductor init``, no git), one ``HandoffCoordinator`` in this process
handing off one small step at a time (write ``fN.txt``), and two agents taking turns:

- **files**: what ``conductor agent`` does: ``claim_next`` (the rename), write the file, write
  ``step_NNN.explanation.md`` and ``step_NNN.result.json`` atomically; the verdict is seen when
  the coordinator has written the provenance.
- **mcp**: a real ``conductor mcp`` subprocess driven by the SDK's ``ClientSession`` over
  stdio: ``next_task``, write the file, ``submit_result`` (which returns the verdict).

Each sample starts when the task is already pending and ends when the agent holds the verdict.
Both paths share the coordinator (file-system events, its debounce and the evidence checks),
so the difference between the rows is the cost of the MCP door. ``claim`` rows time the claim
alone (the rename vs the ``next_task`` call). p99 of a few dozen samples is close to the max.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conductor.contract.result import Result
from conductor.handoff import HandoffCoordinator, TaskSpec
from conductor.handoff.audit import utc_now
from conductor.handoff.claim import claim_next
from conductor.project.init import init_project
from conductor.project.layout import ProjectLayout
from conductor.storage.atomic import atomic_write_text


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def wait_pending(layout: ProjectLayout, plan: str, task_id: str) -> None:
    path = layout.state_dir(plan, "main", "pending") / f"{task_id}.task.json"
    while not path.exists():
        await asyncio.sleep(0.001)


def file_agent(layout: ProjectLayout) -> float:
    """Claim and finish one task as the reference agent does; returns the claim time."""
    t0 = time.perf_counter()
    task_file = claim_next(layout)
    claimed = time.perf_counter() - t0
    assert task_file is not None
    body = json.loads(task_file.read_bytes())
    stem = body["task_id"]
    workspace = (layout.root / body["workspace"]).resolve()
    rel = body["allowed_files"][0]
    (workspace / rel).write_text(f"{stem}\n")
    atomic_write_text(task_file.parent / f"{stem}.explanation.md", f"# {stem}\n\nwrote {rel}\n")
    result = Result(contract_version="1.0", task_id=stem, status="completed", files_changed=[rel],
                    summary=f"wrote {rel}", executor="bench-files", started_at=utc_now(), finished_at=utc_now())
    atomic_write_text(task_file.parent / f"{stem}.result.json", result.model_dump_json(indent=2, exclude_none=True))
    return claimed


async def bench_files(layout: ProjectLayout, coord: HandoffCoordinator, n: int) -> tuple[list[float], list[float]]:
    rounds, claims = [], []
    for i in range(n):
        handoff = asyncio.create_task(coord.hand_off(TaskSpec("files", "main", f"write a{i}.txt", [f"a{i}.txt"])))
        await wait_pending(layout, "files", f"step_{i + 1:03d}")
        t0 = time.perf_counter()
        claims.append(await asyncio.to_thread(file_agent, layout))
        outcome = await handoff
        rounds.append(time.perf_counter() - t0)
        assert outcome.ok, outcome.reason
    return rounds, claims


async def bench_mcp(layout: ProjectLayout, coord: HandoffCoordinator, n: int) -> tuple[list[float], list[float]]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "conductor", "mcp", "--root", str(layout.root)],
                                   cwd=str(layout.root))
    rounds, claims = [], []
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            for i in range(n):
                handoff = asyncio.create_task(
                    coord.hand_off(TaskSpec("mcp", "main", f"write b{i}.txt", [f"b{i}.txt"])))
                await wait_pending(layout, "mcp", f"step_{i + 1:03d}")
                t0 = time.perf_counter()
                task = await session.call_tool("next_task", {"executor": "bench-mcp", "plan_id": "mcp"})
                claims.append(time.perf_counter() - t0)
                data = task.structured_content  # type: ignore[union-attr]
                assert data and data["claimed"], task
                rel = data["allowed_files"][0]
                (Path(data["workspace"]) / rel).write_text(f"{data['task_id']}\n")
                verdict = await session.call_tool("submit_result", {
                    "task_id": data["task_id"], "plan_id": "mcp", "executor": "bench-mcp", "status": "completed",
                    "summary": f"wrote {rel}", "explanation": f"wrote {rel}", "files_changed": [rel]})
                rounds.append(time.perf_counter() - t0)
                assert verdict.structured_content["verdict"] == "pass", verdict  # type: ignore[union-attr]
                await handoff
    return rounds, claims


def row(name: str, values: list[float]) -> list[str]:
    ms = [v * 1000 for v in values]
    return [name, str(len(ms)), f"{percentile(ms, 50):.1f}", f"{percentile(ms, 99):.1f}", f"{statistics.mean(ms):.1f}"]


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        init_project(root)
        env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
               "GIT_COMMITTER_EMAIL": "b@b", "PATH": "/usr/bin:/bin"}
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "start"]):  # attempts copy a commit
            subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
        layout = ProjectLayout.at(root)
        async with HandoffCoordinator(layout) as coord:
            files_rounds, files_claims = await bench_files(layout, coord, n)
            mcp_rounds, mcp_claims = await bench_mcp(layout, coord, n)
            mode = coord.watcher.mode
    rows = [row("files (reference agent)  claim→verdict", files_rounds),
            row("mcp (conductor mcp)      claim→verdict", mcp_rounds),
            row("files                    claim only", files_claims),
            row("mcp                      claim only (next_task)", mcp_claims)]
    headers = ["path", "n", "p50 ms", "p99 ms", "mean ms"]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    print(f"coordinator watcher: {mode}; python {sys.version.split()[0]}")
    for line in [headers, ["-" * w for w in widths], *rows]:
        cells = zip(line, widths, strict=True)
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells)))
    overhead = percentile(mcp_rounds, 50) - percentile(files_rounds, 50)
    print(f"MCP overhead at p50: {overhead * 1000:+.1f} ms per round trip")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="round trips per path (default 40)")
    asyncio.run(main(parser.parse_args().n))
