"""A full disk (a real small tmpfs, mounted by the test) never tears a log: appends write whole
lines or roll back with DiskFull naming the path, no sequence number repeats, an atomic write
leaves no temp file, and once space is freed appending goes on with the chain intact."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conductor.journal import Journal
from conductor.storage import ChainLog, verify_chain
from conductor.storage.atomic import atomic_write_bytes
from conductor.storage.errors import DiskFull
from tests.conftest import IN_CI


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI runs as root; mounting a tmpfs needs root")
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,nr_inodes=64", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def ballast(disk: Path, size: int | None) -> Path:
    """Take ``size`` bytes of the disk, or (``None``) every last block."""
    path = disk / "ballast.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        if size is not None:
            os.write(fd, b"\0" * size)
        else:
            while True:
                try:
                    os.write(fd, b"\0" * 4096)
                except OSError:
                    break
    finally:
        os.close(fd)
    return path


def fill_until_full(log: ChainLog, payload: str) -> tuple[list[dict], DiskFull]:
    acknowledged: list[dict] = []
    for _ in range(100_000):
        try:
            acknowledged.append(log.append({"event": "x", "payload": payload}))
        except DiskFull as exc:
            return acknowledged, exc
    raise AssertionError("the disk never filled")


def test_append_until_full_then_free_space_and_go_on(small_disk: Path) -> None:
    log = ChainLog(small_disk / "audit.log")
    room = ballast(small_disk, 150 * 1024)
    acknowledged, full = fill_until_full(log, "p" * 700)
    assert acknowledged, "nothing fit at all"
    assert full.path == log.path and full.needed and full.needed > 0
    assert str(full).startswith(f"disk full writing {log.path}")
    # Nothing torn: the file ends with a newline and holds exactly the acknowledged lines.
    data = log.path.read_bytes()
    assert data.endswith(b"\n")
    assert [json.loads(line)["seq"] for line in data.splitlines()] == [r["seq"] for r in acknowledged]
    assert verify_chain(log.path) is None
    # A second attempt on the still-full disk fails the same way, still without tearing.
    with pytest.raises(DiskFull):
        log.append({"event": "x", "payload": "p" * 700})
    assert log.path.read_bytes() == data
    room.unlink()
    more = [log.append({"event": "y", "payload": "q" * 700}) for _ in range(5)]
    seqs = [json.loads(line)["seq"] for line in log.path.read_bytes().splitlines()]
    assert seqs == list(range(len(acknowledged) + 5)), "a sequence number repeated or was skipped"
    assert more[0]["prev"] == acknowledged[-1]["digest"]
    assert verify_chain(log.path) is None


def test_a_fresh_chainlog_object_after_a_full_disk_continues_the_same_chain(small_disk: Path) -> None:
    path = small_disk / "j.jsonl"
    ballast(small_disk, 200 * 1024)
    acknowledged, _ = fill_until_full(ChainLog(path), "z" * 300)
    (small_disk / "ballast.bin").unlink()
    stored = ChainLog(path).append({"event": "after"})  # no cached tail: reads the file
    assert stored["seq"] == len(acknowledged) and stored["prev"] == acknowledged[-1]["digest"]
    assert verify_chain(path) is None


def test_journal_append_on_a_full_disk_raises_diskfull_and_writes_nothing(small_disk: Path) -> None:
    journal = Journal(small_disk / "plans" / "p1" / "journal.jsonl", "p1")
    journal.append("plan.resumed")
    ballast(small_disk, None)
    before = journal.path.read_bytes()
    with pytest.raises(DiskFull) as caught:
        journal.append_many([("plan.halted", {"reason": "r" * 20_000})] * 3)
    assert caught.value.path == journal.path
    assert journal.path.read_bytes() == before
    (small_disk / "ballast.bin").unlink()
    assert journal.append("plan.resumed").seq == 1
    assert journal.verify() is None


def test_atomic_write_on_a_full_disk_keeps_the_old_file_and_leaves_no_temp(small_disk: Path) -> None:
    target = small_disk / "state" / "task.json"
    atomic_write_bytes(target, b'{"old": true}\n')
    ballast(small_disk, None)
    with pytest.raises(DiskFull) as caught:
        atomic_write_bytes(target, b"x" * 100_000)
    assert caught.value.path == target and caught.value.needed == 100_000
    assert target.read_bytes() == b'{"old": true}\n'
    assert [p.name for p in target.parent.iterdir()] == ["task.json"]
