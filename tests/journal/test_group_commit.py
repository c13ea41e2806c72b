"""Durable appends from many concurrent writers share fsyncs (group commit) and lose nothing that
was acknowledged: 16 real writer processes append to one journal, some are killed mid-flight
with SIGKILL, and every event any writer was told was written is in the journal, once, in an
unbroken chain with no repeated sequence number."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from conductor.journal import Journal

WRITER = textwrap.dedent("""
    import sys
    from conductor.journal import Journal
    journal = Journal(sys.argv[1], "p1")
    name, count = sys.argv[2], int(sys.argv[3])
    for i in range(count):
        stored = journal.append_record("step.claimed", fork_id="main", step_id=f"step_{i:03d}", executor=name)
        sys.stdout.write(f"{stored['seq']} {stored['digest']}\\n")  # acknowledged: the append returned
        sys.stdout.flush()
""")


def test_killed_writers_lose_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{n}", "400"],
                                stdout=subprocess.PIPE, text=True) for n in range(16)]
    acknowledged: dict[int, list[str]] = {n: [] for n in range(16)}

    def read(n: int) -> None:
        assert writers[n].stdout is not None
        for line in writers[n].stdout:
            acknowledged[n].append(line)

    readers = [threading.Thread(target=read, args=(n,)) for n in range(16)]
    for t in readers:
        t.start()
    deadline = time.monotonic() + 60
    while sum(map(len, acknowledged.values())) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    for n in range(0, 16, 2):  # half the writers die mid-flight, between members of a group
        os.kill(writers[n].pid, signal.SIGKILL)
    for proc in writers:
        proc.wait(timeout=120)
    for t in readers:
        t.join(timeout=30)

    journal = Journal(path, "p1")
    assert journal.verify() is None
    stored = {r["seq"]: r["digest"] for r in journal.records()}
    seqs = [r["seq"] for r in journal.records()]
    assert seqs == list(range(len(seqs))), "a sequence number repeated or was skipped"
    acks = [line.split() for lines in acknowledged.values() for line in lines if line.endswith("\n")]
    assert len(acks) >= 300
    missing = [(int(seq), digest) for seq, digest in acks if stored.get(int(seq)) != digest]
    assert missing == [], f"{len(missing)} acknowledged events are not in the journal"
    assert all(w.returncode == 0 for w in writers[1::2]), "the surviving writers finished"
    assert journal.append("plan.resumed").seq == len(seqs)  # and the journal goes on


def test_threads_of_one_process_share_fsyncs_and_keep_one_chain(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl", "p1")
    results: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(100):
            seq = journal.append("step.claimed", fork_id="main", step_id=f"s{n}_{i}", executor=f"t{n}").seq
            with lock:
                results.append(seq)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1600))
    assert journal.verify() is None
    assert len({json.dumps(r, sort_keys=True) for r in journal.records()}) == 1600
