"""The journal benchmark runs (``--quick``) and prints every figure beside its floor; the full run is for the README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_quick_benchmark_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_journal.py"), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    for row in ("full replay", "json.loads of every line", "status (api", "durable appends, 16 threads",
                "os.write + fsync", "durable appends, 16 processes"):
        assert row in done.stdout, done.stdout
    assert "10,000 events" in done.stdout
