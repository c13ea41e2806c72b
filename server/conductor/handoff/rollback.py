"""Undoing exactly the files a step was not allowed to change, from its before-snapshot.

Why a module of its own: rolling back is destructive, so it is deliberately narrow. Only
the paths named (the violating files) are touched: a file that existed before gets its
before-content and mode back (written atomically), a file the step created is removed.
Nothing else in the workspace is read or written. A file whose before-content was not
kept (larger than the snapshot keeps, see ``snapshot``) is reported, not guessed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from conductor.handoff.snapshot import Snapshot
from conductor.policy.globs import normalize, path_problem
from conductor.storage.atomic import atomic_write_bytes


@dataclass
class RollbackReport:
    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    impossible: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, list[str]]:
        return {"restored": self.restored, "removed": self.removed, "impossible": self.impossible}


def rollback(before: Snapshot, paths: list[str]) -> RollbackReport:
    """Restore each of ``paths`` in ``before.workspace`` to its state in ``before``."""
    report = RollbackReport()
    root = Path(before.workspace)
    for raw in sorted(set(paths)):
        if path_problem(raw):
            report.impossible.append(raw)
            continue
        rel = normalize(raw)
        full = root / rel
        state = before.files.get(rel)
        if state is None:
            with contextlib.suppress(FileNotFoundError):
                if full.is_dir() and not full.is_symlink():
                    report.impossible.append(rel)
                    continue
                full.unlink()
            report.removed.append(rel)
            continue
        content = before.content_of(rel)
        if content is None:
            report.impossible.append(rel)
            continue
        if state.symlink:
            with contextlib.suppress(FileNotFoundError):
                full.unlink()
            full.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(content.decode("utf-8", "surrogateescape"), full)
        else:
            if full.is_symlink():
                full.unlink()
            atomic_write_bytes(full, content, mode=stat.S_IMODE(state.mode))
        report.restored.append(rel)
    return report
