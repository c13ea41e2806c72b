"""Reading a file someone else may have planted: regular files only, bounded, never blocking.

Why a module of its own: agents write into ``.conductor/handoff/`` (results, explanations) and
can leave anything under a name Conductor reads — a FIFO named ``step_003.result.json`` blocks
a plain ``open`` for good, a result symlinked to ``/dev/zero`` is read until memory runs out, a
folder raises where a file was expected. Every engine read of such a file goes through
:func:`read_regular`: ``lstat`` first (a regular file, not a symlink, at most ``limit`` bytes),
then ``open`` with ``O_NOFOLLOW | O_NONBLOCK`` whose ``fstat`` must be the same file, then at most
``limit + 1`` bytes. Anything else is :class:`Unreadable`, whose ``reason`` says what was found.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

DEFAULT_LIMIT = 2 * 1024 * 1024


class Unreadable(OSError):
    """A file that is not read; ``reason`` says why (a FIFO, a device, a symlink, a folder, too large)."""

    def __init__(self, path: str | os.PathLike[str], reason: str, kind: str = "not-regular") -> None:
        super().__init__(errno.EINVAL, f"{path}: {reason}", str(path))
        self.path = Path(path)
        self.reason = reason
        self.kind = kind  # "not-regular" | "symlink" | "too-large"

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def what_is(mode: int) -> str:
    """A person's name for the kind of file ``mode`` describes."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def check_regular(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT) -> os.stat_result:
    """The ``lstat`` of ``path`` when it may be read; :class:`Unreadable` otherwise
    (``FileNotFoundError`` when there is nothing there)."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = "symlink" if stat.S_ISLNK(st.st_mode) else "not-regular"
        raise Unreadable(path, f"is {what_is(st.st_mode)}, not a regular file; it was not read", kind)
    if st.st_size > limit:
        raise Unreadable(path, f"is {st.st_size:,} bytes, over the {limit:,}-byte limit; it was not read",
                         "too-large")
    return st


def read_regular(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); never follows a symlink, never blocks."""
    before = check_regular(path, limit)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Unreadable(path, "became a symbolic link while it was read; it was not read", "symlink") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            raise Unreadable(path, f"was replaced by {what_is(st.st_mode)} while it was read; it was not read")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise Unreadable(path, f"grew over the {limit:,}-byte limit while it was read; it was not read",
                             "too-large")
        return data
    finally:
        os.close(fd)


def read_json_regular(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT) -> Any:
    """The JSON value in the regular file ``path``, or ``None`` when it is absent, not regular, or not JSON."""
    try:
        return json.loads(read_regular(path, limit))
    except (OSError, ValueError):
        return None


__all__ = ["DEFAULT_LIMIT", "Unreadable", "check_regular", "read_json_regular", "read_regular", "what_is"]
