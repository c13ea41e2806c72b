"""The one error a full disk becomes, whichever durable file was being written.

Why a module of its own: a full disk (``ENOSPC``) or an exhausted quota (``EDQUOT``) is not a
bug and not a step's failure: the engine turns it into a resumable halt with a one-line
message. Every writer in ``storage`` raises :class:`DiskFull` (an ``OSError``, so existing
``except OSError`` handlers still catch it) after undoing its partial write, carrying the
path, the bytes it still needed and the space that was free.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Bytes an unprivileged writer may still use on the file system holding ``path``."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


class DiskFull(OSError):
    """A write ran out of space (or quota); nothing half-written was left behind."""

    def __init__(self, path: str | os.PathLike[str], needed: int | None = None, *,
                 code: int = errno.ENOSPC, free: int | None = None) -> None:
        self.path = Path(path)
        self.needed = needed
        self.free = free if free is not None else free_bytes(self.path)
        super().__init__(code, os.strerror(code), str(self.path))

    def __str__(self) -> str:
        what = "quota exceeded" if self.errno == errno.EDQUOT else "disk full"
        need = f"; at least {self.needed} more bytes needed" if self.needed else ""
        free = f" ({self.free} bytes free)" if self.free is not None else ""
        return f"{what} writing {self.path}{need}{free}: free some space, then `conductor resume`"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (str(self.path), self.needed, self.errno, self.free))


def _rebuild(path: str, needed: int | None, code: int, free: int | None) -> DiskFull:
    return DiskFull(path, needed, code=code, free=free)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FULL_ERRNOS


@contextmanager
def writing(path: str | os.PathLike[str], needed: int | None = None) -> Iterator[None]:
    """Turn a full disk met while writing ``path`` (any ``OSError`` with ``ENOSPC``/``EDQUOT``) into
    :class:`DiskFull`, for writers outside this package (git objects, working copies, SQLite)."""
    try:
        yield
    except DiskFull:
        raise
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(exc.filename or path, needed, code=exc.errno or errno.ENOSPC) from exc
        raise
