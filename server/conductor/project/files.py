"""Reading a file someone else wrote without being fooled by it: regular files only, bounded, never blocking.

Why it exists: agents and users write into ``.conductor/``. A FIFO named
``step_003.result.json`` blocks a plain ``open`` for good; a result symlinked to
``/dev/zero`` is read until memory runs out; a symlink can point anywhere. Every read of
such a file by the language server and the MCP server goes through :func:`read_regular`:
``lstat`` first (inside ``.conductor/`` a symlink is refused, elsewhere it is followed and
its target judged), then a non-blocking open whose ``fstat`` must show the same regular
file, then at most ``limit`` bytes. A refusal is a :class:`Unreadable` that says why.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from conductor.project.layout import in_conductor_dir
from conductor.storage.atomic import atomic_write_bytes

DEFAULT_LIMIT = 2 * 1024 * 1024


class Unreadable(OSError):
    """A file that is not read: what it is and why (not a regular file, too large, a symlink …)."""

    def __init__(self, path: str | os.PathLike[str], reason: str, kind: str = "not-regular", size: int = 0) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason
        self.kind = kind  # "not-regular" | "symlink" | "too-large"
        self.size = size


def _kind(mode: int) -> str:
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
    return "not a regular file"


def check_regular(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT, *,
                  follow_symlinks: bool | None = None) -> os.stat_result:
    """The ``stat`` of ``path`` if it may be read; :class:`Unreadable` otherwise.

    ``follow_symlinks`` defaults to ``False`` inside ``.conductor/`` and ``True`` elsewhere.
    """
    follow = (not in_conductor_dir(path)) if follow_symlinks is None else follow_symlinks
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        if not follow:
            raise Unreadable(path, "is a symbolic link; files under .conductor/ are read only when regular",
                             "symlink")
        st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise Unreadable(path, f"is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        raise Unreadable(path, f"is {st.st_size:,} bytes, over the {limit:,}-byte limit", "too-large", st.st_size)
    return st


def read_regular(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT, *,
                 follow_symlinks: bool | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; never blocks on a FIFO or a device."""
    follow = (not in_conductor_dir(path)) if follow_symlinks is None else follow_symlinks
    before = check_regular(path, limit, follow_symlinks=follow)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == getattr(os, "ELOOP", -1) or exc.errno == getattr(os, "EMLINK", -1):
            raise Unreadable(path, "became a symbolic link while it was read", "symlink") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            raise Unreadable(path, "was replaced by something that is not the regular file checked a moment before")
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
            raise Unreadable(path, f"grew over the {limit:,}-byte limit while it was read", "too-large", len(data))
        return data
    finally:
        os.close(fd)


def decode(raw: bytes) -> str:
    """UTF-8 text; invalid bytes become U+FFFD, with a leading one when the first 8 KiB hid them
    (validation reports ``file/binary`` for that mark)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        return text if "\ufffd" in text[:8192] else "\ufffd" + text


def read_text(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT, *,
              follow_symlinks: bool | None = None) -> str:
    return decode(read_regular(path, limit, follow_symlinks=follow_symlinks))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``path`` atomically (temp + fsync + rename); a failure names the file it was writing,
    so a full disk says where."""
    try:
        atomic_write_bytes(path, text.encode("utf-8"))
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
