"""metrics.json is a projection of the audit logs, and `conductor handoff-metrics` prints it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from conductor.handoff import HandoffCoordinator, TaskSpec, derive_metrics
from conductor.handoff.metrics import MetricsAggregator, percentile
from conductor.project.layout import ProjectLayout


def test_metrics_file_equals_derivation(project: ProjectLayout, agent_thread) -> None:
    layout = project

    async def run() -> None:
        async with HandoffCoordinator(layout) as coord:
            agent_thread(layout)
            specs = [TaskSpec("m1", "a", f"write f{i}.txt: {i}", [f"f{i}.txt"]) for i in range(4)]
            specs.append(TaskSpec("m1", "b", "write elsewhere.txt: no", ["f9.txt"]))
            for spec in specs:
                await coord.hand_off(spec)

    asyncio.run(run())
    on_disk = json.loads(layout.metrics_file.read_text())
    assert on_disk == derive_metrics(layout)
    assert on_disk["forks"]["m1/a"]["completed"] == 4
    assert on_disk["forks"]["m1/b"]["failed"] == 1
    assert on_disk["overall"]["success_rate"] == 0.8
    assert on_disk["overall"]["claim_to_verdict_seconds"]["count"] == 5

    table = subprocess.run([sys.executable, "-m", "conductor", "handoff-metrics", "--root", str(layout.root)],
                           capture_output=True, text=True, check=True).stdout
    assert "m1/a" in table and "overall" in table and "80.0%" in table
    as_json = subprocess.run([sys.executable, "-m", "conductor", "handoff-metrics", "--json", "--root",
                              str(layout.root)], capture_output=True, text=True, check=True).stdout
    assert json.loads(as_json) == on_disk


def test_percentiles_and_durations() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    agg = MetricsAggregator()
    for event, ts in [("task.created", "2026-01-01T00:00:00.000000Z"), ("task.claimed", "2026-01-01T00:00:01.000000Z"),
                      ("step.completed", "2026-01-01T00:00:03.500000Z")]:
        agg.feed({"event": event, "ts": ts, "plan_id": "p", "fork_id": "f", "task_id": "step_001"})
    fork = agg.to_json()["forks"]["p/f"]
    assert fork["claim_to_verdict_seconds"]["p50"] == 2.5
    assert fork["handoff_to_verdict_seconds"]["p99"] == 3.5
