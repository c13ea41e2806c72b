"""The journal benchmark runs (``--quick``) and prints its table; the full run is for the README."""

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
        timeout=120,
        check=True,
    )
    assert "durable append/s" in done.stdout and "replay s" in done.stdout
    assert "10,000 |" in done.stdout
