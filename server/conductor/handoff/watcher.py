"""Noticing task and result files through file-system events, with polling only as fallback.

Why a module of its own: Conductor waits on many steps at once (forks, parallel steps) and
must never block its event loop (the language server runs on it). One ``watchfiles.awatch``
(inotify on Linux, FSEvents/kqueue elsewhere; its blocking wait runs in a worker thread)
watches the whole ``.conductor/handoff`` tree; each waiting step subscribes to the few
paths it cares about and is woken when one of them changes.

Fallbacks: when the watcher cannot start or dies (no inotify, watch limit reached), or when
a probe file written at start is not reported within two seconds, the watcher switches to
polling: subscribers re-check every ``poll_interval`` seconds. Even with events working,
subscribers re-check every ``safety_interval`` seconds, so an event lost to a queue
overflow delays a step, it never strands it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from watchfiles import awatch

log = logging.getLogger("conductor.handoff")
#: Longest a batch of changes is held before subscribers hear of it. While agents keep writing
#: (many agents at once) the watcher never sees a quiet ``step``, so this bounds how late a
#: result is noticed: it is part of every verdict's latency.
DEBOUNCE_MS = 30


class Subscription:
    """Woken when any of its paths changes; ``clear()`` before checking, then ``wait()``."""

    def __init__(self, watcher: HandoffWatcher, keys: list[str]) -> None:
        self._watcher = watcher
        self.keys = keys
        self.event = asyncio.Event()

    def clear(self) -> None:
        self.event.clear()

    async def wait(self, timeout: float | None) -> bool:
        """Wait for a change (``True``) or until the timeout / the re-check interval (``False``)."""
        interval = self._watcher.recheck_interval
        limit = interval if timeout is None else max(0.0, min(timeout, interval))
        try:
            await asyncio.wait_for(self.event.wait(), timeout=limit)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._watcher._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HandoffWatcher:
    """One file-system watcher over a folder tree, shared by every waiting step."""

    def __init__(self, root: Path, *, force_polling: bool = False, poll_interval: float = 0.2,
                 safety_interval: float = 2.0) -> None:
        self.root = Path(root)
        self.poll_interval = poll_interval
        self.safety_interval = safety_interval
        self.mode: Literal["events", "polling"] = "polling"
        self._force_polling = force_polling
        self._subs: dict[str, set[Subscription]] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._probe_seen = asyncio.Event()
        self._probe_path: str | None = None

    @property
    def recheck_interval(self) -> float:
        return self.safety_interval if self.mode == "events" else self.poll_interval

    async def start(self, probe_timeout: float = 2.0) -> None:
        if self._task is not None or self._force_polling:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.root = self.root.resolve()
        self._task = asyncio.create_task(self._run(), name="conductor-handoff-watcher")
        probe = self.root / f".watch-probe-{os.getpid()}-{id(self)}"
        self._probe_path = str(probe)
        # The watcher has started once it reports the probe; write it until it does.
        deadline = asyncio.get_running_loop().time() + probe_timeout
        while not self._probe_seen.is_set() and not self._task.done():
            probe.write_bytes(b"probe")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._probe_seen.wait(), timeout=0.05)
            if asyncio.get_running_loop().time() > deadline:
                break
        with contextlib.suppress(FileNotFoundError):
            probe.unlink()
        if self._probe_seen.is_set():
            self.mode = "events"
        else:
            log.warning("file-system events unavailable under %s; polling every %.2fs", self.root, self.poll_interval)
            self.mode = "polling"

    async def _run(self) -> None:
        try:
            async for changes in awatch(self.root, watch_filter=None, debounce=DEBOUNCE_MS, step=5,
                                        stop_event=self._stop,
                                        ignore_permission_denied=True):
                for _change, path in changes:
                    if path == self._probe_path:
                        self._probe_seen.set()
                        continue
                    for sub in self._subs.get(path, ()):
                        sub.event.set()
        except Exception as exc:  # inotify limits, vanished root …: fall back to polling
            log.warning("file watcher stopped (%s); falling back to polling", exc)
        finally:
            self.mode = "polling"
            for subs in self._subs.values():
                for sub in subs:
                    sub.event.set()

    def subscribe(self, paths: Iterable[Path]) -> Subscription:
        keys = [str(self._key(p)) for p in paths]
        sub = Subscription(self, keys)
        for key in keys:
            self._subs.setdefault(key, set()).add(sub)
        return sub

    def _key(self, path: Path) -> Path:
        path = Path(path)
        try:
            return path.parent.resolve() / path.name
        except OSError:
            return path

    def _unsubscribe(self, sub: Subscription) -> None:
        for key in sub.keys:
            subs = self._subs.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[key]

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=5)
            self._task = None
