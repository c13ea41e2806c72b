"""Files agents change on disk: the client's file watching when it can, ours otherwise.

With ``workspace.didChangeWatchedFiles.dynamicRegistration`` the server registers globs for
Conductor files; without it (or when registration fails) it watches the workspace itself
with ``watchfiles`` in a background task. Both paths end in :func:`on_changes`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

from conductor.lsp.diagnostics import SKIP_DIRS
from conductor.project.layout import CONDUCTOR_DIR
from conductor.validation import detect_kind

if TYPE_CHECKING:
    from conductor.lsp.server import ConductorServer

GLOBS = ["**/.conductor/**", "**/*.task.json", "**/*.result.json", "**/*.provenance.json", "**/*.plan.json",
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
        from watchfiles import Change, DefaultFilter, awatch
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


def on_changes(ls: ConductorServer, changes: Iterable[tuple[Path, bool]]) -> None:
    """Files changed on disk (created/changed, or deleted when the flag is set)."""
    policy_roots: set[Path | None] = set()
    handoff = False
    expanded: list[tuple[Path, bool]] = []
    for path, deleted in changes:
        expanded.append((path, deleted))
        if not deleted and path.is_dir():  # a new folder: files made in it before it was watched
            expanded.extend((p, False) for p in sorted(path.rglob("*"))[:500] if p.is_file())
    for path, _deleted in expanded:
        if not relevant(path):
            continue
        kind = detect_kind(path)
        parts = path.parts
        if kind == "policy":
            root = ls.store.project_root(path)
            if not ls.is_open(path.as_uri()):
                policy_roots.add(root)
                ls.store.policy_changed(root)
        if CONDUCTOR_DIR in parts and ("handoff" in parts or "plans" in parts):
            handoff = True
        if path.name == CONDUCTOR_DIR or (CONDUCTOR_DIR in parts and path.parent.name == CONDUCTOR_DIR):
            ls.store.roots.clear()
        if kind is not None:
            with contextlib.suppress(Exception):
                ls.scheduler.publish_disk(path)
    for root in policy_roots:
        ls.scheduler.revalidate_open(root)
    if handoff:
        ls.steps.refresh()
