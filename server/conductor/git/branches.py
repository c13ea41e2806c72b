"""Fork branches and how a verified step reaches one: a merge Conductor computes itself.

Why a module of its own: each fork is a branch ``conductor/<plan_id>/<fork_id>`` and nothing
else (no worktree to share). A verified step commit (built on the fork's head as it was when the
attempt started) is integrated by fast-forward when the fork has not moved, else by a merge that
``git merge-tree --write-tree`` computes without any working tree; a conflict between two
parallel steps is reported with the paths, never half-applied. Refs move only with
``update-ref <new> <old>``, so a concurrent move is caught, not overwritten.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from conductor.git.command import GitError, failure, git, run
from conductor.git.objects import commit_tree, git_dir, is_ancestor, parents_of

OWN_BRANCHES = "refs/heads/conductor/"
_SHA = re.compile(rb"[0-9a-f]{40}\n?")


def fork_branch(plan_id: str, fork_id: str) -> str:
    return f"conductor/{plan_id}/{fork_id}"


def ref_of(branch: str) -> str:
    return branch if branch.startswith("refs/") else f"refs/heads/{branch}"


def read_ref(repo: Path, ref: str) -> str | None:
    """The commit ``ref`` points at (``None``: no such ref).

    A fork branch is read from its loose ref file (git's own first place to look; ``update-ref``
    writes it) without starting git, once per step; anything else — a packed, symbolic or odd ref
    — is asked of git.
    """
    name = ref_of(ref)
    if name.startswith(OWN_BRANCHES) and ".." not in name:
        loose = _loose_ref(git_dir(repo) / name)
        if loose is not None:
            return loose
    out = git(repo, "rev-parse", "--verify", "-q", f"{name}^{{commit}}", check=False)
    return out or None


def _loose_ref(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        data = os.read(fd, 64)
    finally:
        os.close(fd)
    return data[:40].decode() if _SHA.fullmatch(data) else None


def create_ref(repo: Path, ref: str, commit: str) -> None:
    """Create ``ref`` at ``commit`` (refused if it exists with another value)."""
    current = read_ref(repo, ref)
    if current == commit:
        return
    if current is not None:
        raise GitError(f"{ref_of(ref)} exists at {current[:12]}, not {commit[:12]}")
    git(repo, "update-ref", ref_of(ref), commit, "0" * 40)


def move_ref(repo: Path, ref: str, new: str, old: str) -> None:
    """Move ``ref`` from ``old`` to ``new``; refused if it is no longer at ``old``."""
    git(repo, "update-ref", ref_of(ref), new, old)


@dataclass
class Integration:
    ok: bool
    head: str | None  # the fork's head after integration (or unchanged on conflict)
    how: str  # "fast-forward" | "merge" | "already" | "conflict"
    conflicts: list[str] = field(default_factory=list)
    message: str = ""


def integrate(repo: Path, ref: str, step_commit: str, message: str, date: str,
              parent: str | None = None) -> Integration:
    """Bring ``step_commit`` into the branch ``ref``; a conflict leaves the branch untouched.

    With ``parent`` (the commit the step was built on) the common case — the branch has not moved
    since — is one compare-and-swap ``update-ref``.
    """
    if parent is not None and run(repo, "update-ref", ref_of(ref), step_commit, parent, check=False).returncode == 0:
        return Integration(True, step_commit, "fast-forward")
    head = read_ref(repo, ref)
    if head is None:
        raise GitError(f"{ref_of(ref)} does not exist")
    if head == step_commit or is_ancestor(repo, step_commit, head):
        return Integration(True, head, "already", message="already part of the fork")
    if parents_of(repo, step_commit) == [head]:
        move_ref(repo, ref, step_commit, head)
        return Integration(True, step_commit, "fast-forward")
    proc = run(repo, "merge-tree", "--write-tree", "--name-only", "-z", head, step_commit, check=False)
    fields = [f.decode("utf-8", "surrogateescape") for f in proc.stdout.split(b"\0")]
    if proc.returncode == 1:  # <tree> NUL <conflicted path> NUL … NUL NUL <messages>
        names = fields[1:fields.index("", 1)] if "" in fields[1:] else fields[1:]
        conflicts = sorted(set(names))
        return Integration(False, head, "conflict", conflicts,
                           "conflicts with work merged into the fork meanwhile: " + ", ".join(conflicts[:10]))
    if proc.returncode != 0:
        raise failure(repo, ["merge-tree"], proc)
    tree = fields[0].strip()
    merged = commit_tree(repo, tree, [head, step_commit], message, date)
    move_ref(repo, ref, merged, head)
    return Integration(True, merged, "merge")
