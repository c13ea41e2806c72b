"""The code-shape checks of `make lint` can fail: an unexplained function-level import is reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "scripts" / "check_lazy_imports.py"


def run(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), str(folder)], capture_output=True, text=True, check=False)


def test_an_import_inside_a_function_needs_its_reason(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("import os\n\n\ndef f():\n    import json\n    return json, os\n")
    proc = run(tmp_path)
    assert proc.returncode == 1 and f"{tmp_path / 'mod.py'}:5: import json" in proc.stdout
    (tmp_path / "mod.py").write_text("def f():\n    import json  # lazy: measured 10 ms, rarely needed\n")
    assert run(tmp_path).returncode == 0


def test_the_package_passes() -> None:
    proc = run(REPO / "server" / "conductor")
    assert proc.returncode == 0, proc.stdout
