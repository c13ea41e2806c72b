"""The provenance chain survives a writer killed between writing a record and moving the head."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conductor.project.layout import ProjectLayout
from conductor.provenance.verify import verify_project

WRITER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import conductor.provenance.chain as chain
    from conductor.provenance.keys import load_or_create_key

    real = chain.atomic_write_json

    def dying(path, value, mode=0o644):
        if Path(path).name == chain.HEAD_FILE and os.environ.get("DIE_BEFORE_HEAD"):
            os._exit(9)  # killed after the record is on disk, before the head moves
        real(path, value, mode)

    chain.atomic_write_json = dying
    fork, keys, step = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    chain.append_record(fork, fork / "completed" / f"{step}.provenance.json",
                        {"task_id": step, "plan_id": "p", "fork_id": "f"}, load_or_create_key(keys))
""")


def write(fork: Path, keys: Path, step: str, die: bool = False) -> int:
    env = {**os.environ, **({"DIE_BEFORE_HEAD": "1"} if die else {})}
    return subprocess.run([sys.executable, "-c", WRITER, str(fork), str(keys), step], env=env).returncode


def test_killed_writer_does_not_fork_the_chain(tmp_path: Path) -> None:
    layout = ProjectLayout.at(tmp_path)
    fork = layout.fork_dir("p", "f")
    (fork / "completed").mkdir(parents=True)
    assert write(fork, layout.keys_dir, "step_001") == 0
    assert write(fork, layout.keys_dir, "step_002", die=True) == 9
    # The step is issued again later: its earlier attempt is moved aside before the next record.
    attempt = fork / "completed" / "attempts" / "1"
    attempt.mkdir(parents=True)
    (fork / "completed" / "step_002.provenance.json").rename(attempt / "step_002.provenance.json")
    assert write(fork, layout.keys_dir, "step_002") == 0
    assert write(fork, layout.keys_dir, "step_003") == 0
    report = verify_project(layout)
    assert report.ok, [str(p) for p in report.problems]
    assert report.records_checked == 4
