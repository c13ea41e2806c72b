"""Reading a file someone else wrote without being fooled by it, for the doors (language server, MCP).

Why it exists: agents and users write into ``.conductor/``, and users open files anywhere. The
one reader of files that may be planted is :mod:`conductor.storage.regular` (``lstat`` first,
a non-blocking open whose ``fstat`` must show the same regular file, at most ``limit`` bytes;
a FIFO, a device, a symlink or a huge file is :class:`Unreadable`, never a hang). This module
adds what a door needs around it: a user-opened file *outside* ``.conductor/`` may be a symlink
(its target is judged the same way), text decoding as validation expects it, and atomic writes
that name the file when the disk is full.
"""

from __future__ import annotations

import os
from pathlib import Path

from conductor.project.layout import in_conductor_dir
from conductor.storage.atomic import atomic_write_bytes
from conductor.storage.regular import DEFAULT_LIMIT, Unreadable
from conductor.storage.regular import check_regular as _check_regular
from conductor.storage.regular import read_regular as _read_regular

__all__ = ["DEFAULT_LIMIT", "Unreadable", "atomic_write_text", "check_regular", "decode", "read_regular", "read_text"]


def _target(path: str | os.PathLike[str], follow_symlinks: bool | None) -> str | os.PathLike[str]:
    """What is read: ``path`` itself inside ``.conductor/`` (a symlink there is refused), else its
    real path (a user's symlinked document is followed, and its target judged)."""
    follow = (not in_conductor_dir(path)) if follow_symlinks is None else follow_symlinks
    return os.path.realpath(path) if follow else path


def check_regular(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT, *,
                  follow_symlinks: bool | None = None) -> os.stat_result:
    return _check_regular(_target(path, follow_symlinks), limit)


def read_regular(path: str | os.PathLike[str], limit: int = DEFAULT_LIMIT, *,
                 follow_symlinks: bool | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; never blocks on a FIFO or a device."""
    return _read_regular(_target(path, follow_symlinks), limit)


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
