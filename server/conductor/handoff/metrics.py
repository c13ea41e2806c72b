"""``handoff/metrics.json``: counts, success rate and latency percentiles, from the audit logs.

Why a module of its own: metrics are a projection of the audit logs, never a second source
of truth. :func:`derive_metrics` folds every fork's audit log through
:class:`MetricsAggregator`; the coordinator feeds the same aggregator with each line it
appends and rewrites ``metrics.json`` from it, so the file always equals the derivation
(a test checks this).

Per fork (``"<plan_id>/<fork_id>"``) and overall: tasks ``created``, ``claimed``,
``completed``, ``failed``, ``timed_out``, ``unclaimed``, ``invalid_results``,
``success_rate`` (completed / (completed + failed), ``null`` before any verdict), and
percentiles (nearest rank) p50/p90/p99 of ``claim_to_verdict_seconds`` (task.claimed →
verdict) and ``handoff_to_verdict_seconds`` (task.created → verdict).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conductor.handoff.audit import parse_ts
from conductor.project.layout import ProjectLayout
from conductor.storage.atomic import atomic_write_json
from conductor.storage.regular import check_regular

COUNTERS = ("created", "claimed", "completed", "failed", "timed_out", "unclaimed", "invalid_results")
EVENT_COUNTER = {
    "task.created": "created",
    "task.claimed": "claimed",
    "step.completed": "completed",
    "step.failed": "failed",
    "task.timeout": "timed_out",
    "task.unclaimed": "unclaimed",
    "result.invalid": "invalid_results",
}


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (``None`` when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: Iterable[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
    }


@dataclass
class _Group:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    claim_to_verdict: list[float] = field(default_factory=list)
    handoff_to_verdict: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        done = self.counts["completed"] + self.counts["failed"]
        return {
            **self.counts,
            "success_rate": round(self.counts["completed"] / done, 6) if done else None,
            "claim_to_verdict_seconds": summarize(self.claim_to_verdict),
            "handoff_to_verdict_seconds": summarize(self.handoff_to_verdict),
        }


class MetricsAggregator:
    """Folds audit records (in each log's order) into metrics."""

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}
        self._created: dict[tuple[str, str], float] = {}
        self._claimed: dict[tuple[str, str], float] = {}

    def feed(self, record: dict[str, Any]) -> None:
        event = record.get("event")
        counter = EVENT_COUNTER.get(str(event))
        if counter is None:
            return
        group_key = f"{record.get('plan_id')}/{record.get('fork_id')}"
        group = self._groups.setdefault(group_key, _Group())
        group.counts[counter] += 1
        key = (group_key, str(record.get("task_id")))
        ts = parse_ts(str(record["ts"]))
        if event == "task.created":
            self._created[key] = ts
            self._claimed.pop(key, None)
        elif event == "task.claimed":
            self._claimed[key] = ts
        elif event in ("step.completed", "step.failed"):
            created = self._created.pop(key, None)
            claimed = self._claimed.pop(key, None)
            if created is not None:
                group.handoff_to_verdict.append(round(ts - created, 6))
            if claimed is not None:
                group.claim_to_verdict.append(round(ts - claimed, 6))

    def to_json(self) -> dict[str, Any]:
        overall = _Group()
        for group in self._groups.values():
            for name in COUNTERS:
                overall.counts[name] += group.counts[name]
            overall.claim_to_verdict.extend(group.claim_to_verdict)
            overall.handoff_to_verdict.extend(group.handoff_to_verdict)
        return {
            "derived_from": "audit logs (.conductor/handoff/plan_*/fork_*/audit.log)",
            "overall": overall.to_json(),
            "forks": {name: self._groups[name].to_json() for name in sorted(self._groups)},
        }


def iter_audit_logs(layout: ProjectLayout) -> list[tuple[str, str, Any]]:
    """``(plan_id, fork_id, path)`` of every audit log in the project, sorted."""
    out = []
    if layout.handoff_dir.is_dir():
        for path in sorted(layout.handoff_dir.glob("plan_*/fork_*/audit.log")):
            out.append((path.parent.parent.name.removeprefix("plan_"), path.parent.name.removeprefix("fork_"), path))
    return out


def aggregate(layout: ProjectLayout) -> MetricsAggregator:
    agg = MetricsAggregator()
    for _plan, _fork, path in iter_audit_logs(layout):
        try:
            check_regular(path, 1 << 40)  # a FIFO or a symlink planted as audit.log is not read (verify names it)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as fh:
            for raw in fh:
                if raw.strip():
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        continue  # `conductor verify` reports broken lines; metrics skip them
                    if isinstance(record, dict):
                        agg.feed(record)
    return agg


def derive_metrics(layout: ProjectLayout) -> dict[str, Any]:
    """The metrics of the project, computed from its audit logs alone."""
    return aggregate(layout).to_json()


def write_metrics(layout: ProjectLayout, metrics: dict[str, Any]) -> None:
    atomic_write_json(layout.metrics_file, metrics)


def format_table(metrics: dict[str, Any]) -> str:
    """A plain-text table of the metrics (``conductor handoff-metrics``)."""
    headers = ["fork", "created", "done", "failed", "timeout", "unclaimed", "success",
               "claim→verdict p50/p90/p99 s", "handoff→verdict p50/p90/p99 s"]

    def pct(summary: dict[str, Any]) -> str:
        vals = [summary.get(k) for k in ("p50", "p90", "p99")]
        return "/".join("-" if v is None else f"{v:.3f}" for v in vals)

    def row(name: str, g: dict[str, Any]) -> list[str]:
        rate = "-" if g["success_rate"] is None else f"{g['success_rate'] * 100:.1f}%"
        return [name, str(g["created"]), str(g["completed"]), str(g["failed"]), str(g["timed_out"]),
                str(g["unclaimed"]), rate, pct(g["claim_to_verdict_seconds"]), pct(g["handoff_to_verdict_seconds"])]

    rows = [row(name, g) for name, g in metrics["forks"].items()]
    rows.append(row("overall", metrics["overall"]))
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)) for r in rows)
    return "\n".join(lines)
