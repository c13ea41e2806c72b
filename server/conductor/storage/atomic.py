"""Write a file so that readers see either the old content or the new, never half of it.

The content goes to a temporary file in the same folder, is flushed and fsynced, then
renamed over the target (atomic on POSIX); the folder is fsynced so the rename survives a
crash. When the disk is full (or the quota exhausted) the temporary file is removed and
:class:`~conductor.storage.errors.DiskFull` is raised: the target keeps its old content.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from conductor.storage.errors import DiskFull, is_disk_full


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o644, *,
                       exclusive: bool = False) -> None:
    """Write ``path`` atomically. With ``exclusive``, refuse (``FileExistsError``) if it exists:
    the temporary file is *linked* into place, which never clobbers, so of two writers one wins."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(target, len(data), code=exc.errno or 0) from exc
        raise
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if exclusive:
            os.link(tmp, target)
            os.unlink(tmp)
        else:
            os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and is_disk_full(exc) and not isinstance(exc, DiskFull):
            raise DiskFull(target, len(data), code=exc.errno or 0) from exc
        raise
    fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_json(path: str | os.PathLike[str], value: Any, mode: int = 0o644) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n", mode)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Persist a rename or a new entry in ``directory``."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
