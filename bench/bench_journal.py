"""How fast the plan journal is written and replayed, and how replay time grows with its length.

Why it exists: every state change is an event and every status/resume/explain is a replay,
so the journal's append rate and replay time bound what Conductor can do. This prints:

* durable append rate — ``Journal.append`` (one flock + fsync per event), sampled;
* batch append rate — ``Journal.append_many`` (10 000 events per lock/fsync);
* replay time — read, parse and project every event (``replay(journal)``);
* verify time — check the whole hash chain (``Journal.verify``);
* the ratio replay(10^6) / replay(10^5) (≈ 10 means replay is linear in the journal length).

Run::

    .venv/bin/python bench/bench_journal.py            # 10^5 and 10^6 events (about a minute)
    .venv/bin/python bench/bench_journal.py --quick    # 10^4 events, a smoke run

The event mix is a realistic loop: per step run ``step.confidence``, ``step.handed_off``,
``step.claimed``, ``step.verified``, ``step.completed``, and an ``llm.call`` every tenth run,
over a plan of 1000 steps.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from conductor.journal import Journal, replay

STEPS = 1000
BATCH = 10_000


def plan_document() -> dict[str, Any]:
    return {
        "contract_version": "1.0",
        "goal": "benchmark",
        "strategy": "bench",
        "steps": [
            {
                "id": f"step_{i:04d}",
                "title": f"Step {i}",
                "instruction": f"Change module_{i}.py",
                "allowed_files": [f"src/module_{i}.py"],
            }
            for i in range(1, STEPS + 1)
        ],
    }


def event_stream(count: int) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``count`` events: the plan's start, then step runs in a loop."""
    yield "plan.created", {"goal": "benchmark", "mode": "handoff", "forks": 1, "config": {"forks": 1}}
    yield "plan.planned", {"fork_id": "main", "strategy": "bench", "plan": plan_document()}
    produced, run = 2, 0
    confidence = {"score": 0.84, "level": "high", "factors": [{"name": "history", "value": 0.7, "weight": 0.35}]}
    while produced < count:
        step = f"step_{run % STEPS + 1:04d}"
        base = {"fork_id": "main", "step_id": step}
        cycle: list[tuple[str, Mapping[str, Any]]] = [
            ("step.confidence", {**base, "confidence": confidence}),
            ("step.handed_off", {**base, "task_path": f"pending/{step}.task.json", "checksum": "sha256:" + "0" * 64,
                                 "attempt": run // STEPS + 1}),
            ("step.claimed", {**base, "executor": "bench-agent"}),
            ("step.verified", {**base, "verdict": "pass", "reason": "ok", "evidence": {"files": [f"src/{step}.py"]},
                               "provenance_path": f"completed/{step}.provenance.json"}),
            ("step.completed", base),
        ]  # fmt: skip
        if run % 10 == 0:
            cycle.append(
                (
                    "llm.call",
                    {
                        "purpose": "repair",
                        "request_digest": "d" * 64,
                        "model": "bench",
                        "usage": {"prompt_tokens": 100, "completion_tokens": 50},
                        "response_text": "{}",
                    },
                )
            )
        for event in cycle:
            if produced >= count:
                return
            yield event
            produced += 1
        run += 1


def measure(count: int, durable_sample: int, folder: Path) -> dict[str, float]:
    figures: dict[str, float] = {"events": count}

    durable = Journal(folder / f"durable_{count}.jsonl", plan_id="bench")
    events = event_stream(durable_sample)
    started = time.perf_counter()
    for event_type, data in events:
        durable.append(event_type, **data)
    figures["durable_append_per_s"] = durable_sample / (time.perf_counter() - started)

    journal = Journal(folder / f"journal_{count}.jsonl", plan_id="bench")
    batch: list[tuple[str, Mapping[str, Any]]] = []
    started = time.perf_counter()
    for event in event_stream(count):
        batch.append(event)
        if len(batch) == BATCH:
            journal.append_many(batch)
            batch = []
    journal.append_many(batch)
    figures["batch_append_per_s"] = count / (time.perf_counter() - started)
    figures["file_mb"] = journal.path.stat().st_size / 1e6

    started = time.perf_counter()
    state = replay(journal)
    figures["replay_s"] = time.perf_counter() - started
    assert state.event_count == count, (state.event_count, count)

    started = time.perf_counter()
    broken = journal.verify()
    figures["verify_s"] = time.perf_counter() - started
    assert broken is None, broken

    journal.path.unlink()
    durable.path.unlink()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Journal append and replay benchmark.")
    parser.add_argument("--quick", action="store_true", help="10^4 events only (smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    sizes = [10_000] if args.quick else [100_000, 1_000_000]
    durable_sample = 500 if args.quick else 2_000

    print(f"conductor journal benchmark — Python {platform.python_version()} on {platform.machine()} "
          f"({platform.system()})")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="conductor-bench-") as tmp:
        for size in sizes:
            rows.append(measure(size, durable_sample, Path(tmp)))
            print(f"  measured {size:,} events", file=sys.stderr, flush=True)

    header = (
        f"{'events':>10} | {'durable append/s':>16} | {'batch append/s':>14} | {'file MB':>8} | "
        f"{'replay s':>8} | {'verify s':>8} | {'replay µs/event':>15}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{int(row['events']):>10,} | {row['durable_append_per_s']:>16,.0f} | "
            f"{row['batch_append_per_s']:>14,.0f} | "
            f"{row['file_mb']:>8.1f} | {row['replay_s']:>8.2f} | {row['verify_s']:>8.2f} | "
            f"{row['replay_s'] / row['events'] * 1e6:>15.1f}"
        )
    if len(rows) == 2:
        ratio = rows[1]["replay_s"] / rows[0]["replay_s"]
        print(f"replay time ratio 10^6 / 10^5 = {ratio:.2f} (10.0 = linear)")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
