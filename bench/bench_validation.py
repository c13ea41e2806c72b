"""How fast validation answers hostile and ordinary documents.

Prints, for each case, the median wall time of `validate_document` over several runs and,
where it can finish, the time of plain ``yaml.safe_load`` + ``jsonschema`` on the same text
(the obvious way to validate) measured in the same run, with the ratio. Then the whole
commands on a 100,000-constraint policy: `conductor policy` (the merge with every value's
origin) beside `conductor validate` of the same file, its floor (best of several runs each).

    python bench/bench_validation.py            # full
    python bench/bench_validation.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from conductor.contract import schemas
from conductor.validation import validate_document

TEMPLATE = (Path(__file__).resolve().parents[1] / "server/conductor/project/templates/policy.yaml").read_text()


def bomb() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def large_policy(lines: int) -> str:
    body = "\n".join(f"  - 'generated/dir{i}/**'" for i in range(lines))
    return f"file_rules:\n  protected_patterns:\n{body}\n"


CASES: dict[str, tuple[str, str, bool]] = {
    # name: (text, kind, run the naive reference too)
    "policy template (25 lines)": (TEMPLATE, "policy", True),
    "policy, 5,000 lines": (large_policy(5000), "policy", True),
    "alias bomb (billion laughs)": (bomb(), "policy", False),
    "10 MB file": ("global_constraints:\n  - " + "x" * 10_000_000 + "\n", "policy", True),
    "nesting 100,000 deep (YAML)": ("global_constraints: " + "[" * 100_000 + "]" * 100_000, "policy", False),
    "nesting 100,000 deep (JSON)": ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "task", False),
}


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def naive(text: str, kind: str) -> None:
    data = yaml.safe_load(text)
    list(Draft202012Validator(schemas.load(kind)).iter_errors(data))


def big_policy() -> str:
    return "global_constraints:\n" + "".join(f"  - c{i}\n" for i in range(100_000)) + \
        "file_rules:\n  protected_patterns:\n" + "".join(f"    - p{i}/*\n" for i in range(2_000))


def merge_beside_validate(repeat: int) -> tuple[float, float]:
    """Best wall time of `conductor policy` and of `conductor validate` on a 100,000-constraint policy."""
    def timed(root: str, *args: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "conductor", *args], cwd=root, check=True, capture_output=True)
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory() as root:
        subprocess.run([sys.executable, "-m", "conductor", "init", "."], cwd=root, check=True, capture_output=True)
        Path(root, ".conductor", "policy.yaml").write_text(big_policy())
        merge, validate = [], []
        for _ in range(repeat):  # alternated: a burst of load hits both alike
            validate.append(timed(root, "validate", ".conductor/policy.yaml"))
            merge.append(timed(root, "policy"))
    return min(merge), min(validate)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    rows = []
    for name, (text, kind, reference) in CASES.items():
        _, diags = validate_document(text, kind)  # type: ignore[arg-type]
        ours = median_time(lambda t=text, k=kind: validate_document(t, k), repeat)  # type: ignore[misc]
        ref = median_time(lambda t=text, k=kind: naive(t, k), max(1, repeat // 3)) if reference else None
        rows.append(
            {"case": name, "conductor_s": ours, "naive_s": ref, "diagnostic": diags[0].code if diags else "(none)"}
        )
    merge, validate = merge_beside_validate(repeat)
    if args.json:
        print(json.dumps({"documents": rows, "policy_100k": {"policy_s": merge, "validate_s": validate}}, indent=2))
        return
    print(f"{'case':32} {'conductor':>11} {'safe_load+jsonschema':>21} {'ratio':>7}  diagnostic")
    for r in rows:
        naive_s = f"{r['naive_s'] * 1000:9.1f} ms" if r["naive_s"] is not None else "(not safe to run)"
        ratio = f"{r['naive_s'] / r['conductor_s']:6.1f}x" if r["naive_s"] else "      -"
        print(f"{r['case']:32} {r['conductor_s'] * 1000:8.2f} ms {naive_s:>21} {ratio:>7}  {r['diagnostic']}")
    print(f"\n100,000-constraint policy: `conductor policy` {merge * 1000:.0f} ms, `conductor validate` (floor) "
          f"{validate * 1000:.0f} ms: {merge / validate:.2f}x")


if __name__ == "__main__":
    main()
