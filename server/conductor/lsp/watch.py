"""Files agents change on disk: the client's file watching when it can, ours otherwise.

With ``workspace.didChangeWatchedFiles.dynamicRegistration`` the server registers globs for
Conductor files; without it (or when registration fails) it watches the workspace itself
with ``watchfiles`` in a background task. Both paths end in :func:`on_changes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

from conductor.project.layout import CONDUCTOR_DIR, SKIP_DIRS, is_runtime_state
from conductor.validation import detect_kind

if TYPE_CHECKING:
    from conductor.lsp.server import ConductorServer

GLOBS = [f"**/{CONDUCTOR_DIR}/**", "**/*.task.json", "**/*.result.json", "**/*.provenance.json", "**/*.plan.json",
         "**/*.plan.yaml", "**/*.plan.yml"]
REGISTRATION_ID = "conductor-watched-files"


def relevant(path: Path) -> bool:
    if any(part in SKIP_DIRS for part in path.parts):
        return False
    return detect_kind(path) is not None or CONDUCTOR_DIR in path.parts


async def start(ls: ConductorServer) -> str:
    """Arrange to hear about file changes; returns "client", "server" or "none"."""
    if ls.caps.watch_dynamic:
        try:
            await asyncio.wait_for(ls.client_register_capability_async(lsp.RegistrationParams(registrations=[
                lsp.Registration(id=REGISTRATION_ID, method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                 register_options={"watchers": [{"globPattern": g} for g in GLOBS]}),
            ])), 5)
            return "client"
        except Exception as exc:
            ls.log_info(f"client file watching unavailable ({exc!r}); watching the workspace ourselves")
    roots = ls.workspace_roots()
    if not roots:
        return "none"
    task = asyncio.ensure_future(_watch(ls, roots))
    ls.background.add(task)
    task.add_done_callback(ls.background.discard)
    return "server"


async def _watch(ls: ConductorServer, roots: list[Path]) -> None:
    try:
        from watchfiles import Change, DefaultFilter, awatch  # lazy: only for clients that cannot watch (~0.2 s)
    except ImportError:  # pragma: no cover - a declared dependency
        ls.log_error("watchfiles is not installed: files changed by agents are not picked up")
        return

    class Filter(DefaultFilter):
        def __call__(self, change: Change, path: str) -> bool:
            return super().__call__(change, path) and relevant(Path(path))

    try:
        async for changes in awatch(*roots, watch_filter=Filter(), stop_event=ls.stopping, debounce=60, step=20,
                                    recursive=True):
            paths = [(Path(p), c == Change.deleted) for c, p in changes]
            on_changes(ls, paths)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        ls.log_error(f"file watching stopped: {exc!r}")


def _expand(changes: list[tuple[Path, bool]], limit: int = 500) -> list[tuple[Path, bool]]:
    """The changes, plus the Conductor files already inside a folder that was just created (bounded walk)."""
    expanded: list[tuple[Path, bool]] = []
    for path, deleted in changes:
        expanded.append((path, deleted))
        if deleted or not path.is_dir():
            continue
        found = 0
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(names):
                candidate = Path(folder) / name
                if relevant(candidate):
                    expanded.append((candidate, False))
                    found += 1
            if found >= limit:
                break
    return expanded


def on_changes(ls: ConductorServer, changes: Iterable[tuple[Path, bool]]) -> None:
    """Files changed on disk (created/changed, or deleted when the flag is set); handled off the event loop."""
    task = asyncio.ensure_future(_on_changes(ls, list(changes)))
    ls.background.add(task)
    task.add_done_callback(ls.background.discard)


async def _on_changes(ls: ConductorServer, changes: list[tuple[Path, bool]]) -> None:
    try:
        expanded = await asyncio.to_thread(_expand, changes) if any(not d for _, d in changes) else changes
    except OSError as exc:
        ls.log_error(f"reading changed folders failed: {exc!r}")
        expanded = changes
    policy_roots: set[Path | None] = set()
    runtime = False
    for path, _deleted in expanded:
        if not relevant(path):
            continue
        kind = detect_kind(path)
        if kind == "policy":
            root = ls.store.project_root(path)
            if not ls.is_open(path.as_uri()):
                policy_roots.add(root)
                ls.store.policy_changed(root)
        if is_runtime_state(path):
            runtime = True
        if path.name == CONDUCTOR_DIR or (CONDUCTOR_DIR in path.parts and path.parent.name == CONDUCTOR_DIR):
            ls.store.roots.clear()
        if kind is not None:
            with contextlib.suppress(Exception):
                ls.scheduler.publish_disk(path)
    for root in policy_roots:
        ls.scheduler.revalidate_open(root)
    if runtime:
        ls.steps.refresh()
