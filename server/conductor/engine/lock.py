"""One writer per plan: an exclusive ``flock`` on the plan's lock file, held for the engine's life.

Why a module of its own: two engines running one plan (two ``conductor resume``, a ``resume``
while the editor's build still runs) would journal the same steps twice, race for the same
task files and break the chains. ``build``, ``explore``, ``resume`` and the language server's
jobs all go through :class:`PlanLock`; the kernel releases the lock when the process dies, so a
crash never leaves a plan locked. The lock file holds who has it (pid, host, command, since) so
the refusal and ``conductor status`` can say so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conductor import secrets
from conductor.project.layout import ProjectLayout

#: How long a refused ``flock`` is retried while nobody is seen holding the lock: a reader
#: (``conductor status`` asking who holds it) takes it shared for an instant, and a new holder
#: writes who it is just after taking it; neither is a second engine.
SETTLE_SECONDS = 1.0


class PlanLocked(RuntimeError):
    """Another process runs this plan; ``holder`` says which."""

    def __init__(self, plan_id: str, holder: dict[str, Any] | None) -> None:
        self.plan_id = plan_id
        self.holder = holder or {}
        who = describe(self.holder) if holder else "another process"
        super().__init__(f"plan {plan_id} is being run by {who}; wait for it to finish or stop it first")


def describe(holder: dict[str, Any]) -> str:
    command = holder.get("command") or "conductor"
    since = holder.get("since", "?")
    return f"process {holder.get('pid', '?')} on {holder.get('host', '?')} (`{command}`, since {since})"


class PlanLock:
    """Held while an engine runs a plan (``with PlanLock(layout, plan_id): …``)."""

    def __init__(self, layout: ProjectLayout, plan_id: str, purpose: str = "") -> None:
        self.path = layout.plan_lock_file(plan_id)
        self.plan_id = plan_id
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> PlanLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                who = _recorded(fd)
                if _alive(who) or time.monotonic() >= deadline:
                    os.close(fd)
                    raise PlanLocked(self.plan_id, who or None) from None
                time.sleep(0.02)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "command": self.purpose or command_line(),
                "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        with contextlib.suppress(OSError):  # who holds it is a courtesy; a full disk must not stop the lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PlanLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def command_line() -> str:
    """This process's command as a person typed it (``conductor resume --plan 1a2b``), secrets masked."""
    program = os.path.basename(sys.argv[0]) if sys.argv else "conductor"
    if program in ("__main__.py", "conductor", ""):
        program = "conductor"
    text = " ".join([program, *sys.argv[1:]])
    return str(secrets.redact(text if len(text) <= 200 else text[:199] + "…"))


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds the lock at ``path`` (``None`` when nobody does)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO planted there never blocks
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _recorded(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _recorded(fd: int) -> dict[str, Any]:
    """Who the lock file says holds it (``{}`` when it says nothing usable)."""
    try:
        data = os.pread(fd, 4096, 0)
        info = json.loads(data) if data else {}
    except (OSError, ValueError):
        info = {}
    return info if isinstance(info, dict) else {}


def _alive(info: dict[str, Any]) -> bool:
    """Whether the process the lock file names runs (on this host); ``False`` when it names none."""
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if info.get("host") not in (None, socket.gethostname()):
        return True  # another machine's process (a shared folder): take its word
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def plan_holder(layout: ProjectLayout, plan_id: str) -> dict[str, Any] | None:
    return holder(layout.plan_lock_file(plan_id))
