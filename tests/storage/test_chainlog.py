"""The hash-chained log: appends from many processes stay one valid chain, and any edit,
insertion, deletion or truncation is reported at its line."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import threading
from pathlib import Path

from conductor.storage import ChainLog, atomic_write_json, verify_chain


def _writer(path: str, n: int, tag: str) -> None:
    log = ChainLog(path)
    for i in range(n):
        log.append({"event": "x", "writer": tag, "i": i})


def test_concurrent_writers_produce_one_valid_chain(tmp_path: Path):
    path = str(tmp_path / "audit.log")
    procs = [multiprocessing.get_context("spawn").Process(target=_writer, args=(path, 50, f"w{k}")) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    records = ChainLog(path).records()
    assert len(records) == 200
    assert [r["seq"] for r in records] == list(range(200))
    assert verify_chain(path) is None


def make(tmp_path: Path, n: int = 5) -> Path:
    path = tmp_path / "a.log"
    log = ChainLog(path)
    for i in range(n):
        log.append({"event": "e", "i": i})
    return path


def test_an_edited_line_is_named(tmp_path: Path):
    path = make(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"i":2', '"i":7')
    path.write_text("".join(lines))
    broken = verify_chain(path)
    assert broken is not None and broken.line == 3


def test_a_deleted_line_breaks_the_next_link(tmp_path: Path):
    path = make(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    del lines[1]
    path.write_text("".join(lines))
    broken = verify_chain(path)
    assert broken is not None and broken.line == 2


def test_a_truncated_last_line_is_reported(tmp_path: Path):
    path = make(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    broken = verify_chain(path)
    assert broken is not None and broken.line == 5 and "incomplete" in broken.reason


def test_atomic_json_write_replaces_whole_files(tmp_path: Path):
    target = tmp_path / "m.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_torn_last_line_is_ignored_by_readers_and_cut_by_the_next_append(tmp_path: Path):
    path = make(tmp_path, 3)
    with path.open("ab") as fh:
        fh.write(b'{"event":"half-writ')
    assert len(ChainLog(path).records()) == 3
    ChainLog(path).append({"event": "after"})
    records = ChainLog(path).records()
    assert [r["event"] for r in records] == ["e", "e", "e", "after"]
    assert verify_chain(path) is None


def test_threads_are_acknowledged_only_once_an_fsync_covered_their_line(tmp_path: Path):
    """The lead passes to the next batch before this one is fsynced (pipelining); still, no
    append returns before an fsync that started after its line was written has finished."""

    class Watched(ChainLog):
        durable = 0

        def _fsync(self, fd: int, end: int) -> None:
            size = os.fstat(fd).st_size  # everything written before the fsync call is durable after it
            super()._fsync(fd, end)
            with lock:
                Watched.durable = max(Watched.durable, size)

    lock = threading.Lock()
    log = Watched(tmp_path / "log.jsonl")
    acked: list[tuple[int, int]] = []  # (seq, bytes known durable when the append returned)

    def work(i: int) -> None:
        for n in range(40):
            stored = log.append({"writer": i, "n": n})
            with lock:
                acked.append((stored["seq"], Watched.durable))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ends = list(itertools.accumulate(len(line) for line in (tmp_path / "log.jsonl").read_bytes().splitlines(True)))
    assert len(acked) == len(ends) == 16 * 40
    assert all(ends[seq] <= durable for seq, durable in acked)
    assert verify_chain(tmp_path / "log.jsonl") is None
