"""The part of applying edits that runs inside the sandbox: write approved files, never through a link.

Why a module of its own, with nothing but the standard library: it is started as a fresh
Python inside bubblewrap for every llm-mode step (``python -I -S writer.py``, about 20 ms,
where importing Conductor would cost half a second), and it must not trust the folders it
writes into. Each path is walked with ``lstat``: a symlink, or a non-folder where a folder is
needed, refuses that edit; each write is atomic (temp file + fsync + rename).

stdin: ``{"workspace": str, "files": [{"path", "content", "delete"?}]}`` (already checked
against allowed files and protections by the caller); stdout: ``{"written", "deleted",
"refused": [{"path", "reason"}]}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import tempfile
from typing import Any

MAX_EDIT_BYTES = 8 * 1024 * 1024


def link_problem(workspace: str, rel: str) -> str | None:
    """Why writing ``rel`` would go through something that is not a plain folder, else None."""
    current = workspace
    parts = rel.split("/")
    for index, part in enumerate(parts):
        current = os.path.join(current, part)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return None
        last = index == len(parts) - 1
        if stat.S_ISLNK(info.st_mode):
            return f"`{'/'.join(parts[: index + 1])}` is a symlink"
        if not last and not stat.S_ISDIR(info.st_mode):
            return f"`{'/'.join(parts[: index + 1])}` is not a folder"
        if last and not stat.S_ISREG(info.st_mode):
            return f"`{rel}` exists and is not a regular file"
    return None


def make_parents(workspace: str, rel: str) -> None:
    current = workspace
    for part in rel.split("/")[:-1]:
        current = os.path.join(current, part)
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                raise NotADirectoryError(current) from None


def write_atomic(target: str, data: bytes) -> None:
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def apply_approved(workspace: str, files: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Write (or delete) each approved edit; refuse those that would go through a link."""
    written: list[str] = []
    deleted: list[str] = []
    refused: list[dict[str, str]] = []
    for item in files:
        rel = item["path"]
        reason = link_problem(workspace, rel)
        if reason is not None:
            refused.append({"path": item.get("shown", rel), "reason": reason})
            continue
        target = os.path.join(workspace, rel)
        try:
            if item.get("delete"):
                if os.path.lexists(target):
                    os.unlink(target)
                    deleted.append(rel)
                continue
            data = str(item.get("content", "")).encode("utf-8")
            if len(data) > MAX_EDIT_BYTES:
                refused.append({"path": item.get("shown", rel), "reason": f"content over {MAX_EDIT_BYTES} bytes"})
                continue
            make_parents(workspace, rel)
            write_atomic(target, data)
            written.append(rel)
        except OSError as exc:
            refused.append({"path": item.get("shown", rel), "reason": f"{exc.strerror or exc} ({type(exc).__name__})"})
    return {"written": written, "deleted": deleted, "refused": refused}


def main() -> int:
    try:
        request = json.load(sys.stdin)
        report = apply_approved(str(request["workspace"]), list(request["files"]))
    except (ValueError, KeyError, TypeError) as exc:
        print(f"conductor sandbox writer: bad request on stdin: {exc}", file=sys.stderr)
        return 2
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
