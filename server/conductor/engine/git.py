"""Git operations the engine needs: a repository, one worktree and branch per fork, commits, merge.

Each fork works in ``.conductor/worktrees/<plan_id>/<fork_id>`` on branch
``conductor/<plan_id>/<fork_id>``, started from the user's current commit, so strategies
never see each other's edits and the user's checkout is untouched until a merge.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

ENGINE_IDENTITY = ["-c", "user.name=Conductor", "-c", "user.email=conductor@localhost"]


class GitError(RuntimeError):
    """A git command failed; the message carries the command and git's own words."""


def git(cwd: Path, *args: str, check: bool = True, identity: bool = False) -> str:
    cmd = ["git", *(ENGINE_IDENTITY if identity else []), *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise GitError(f"`git {' '.join(args)}` failed in {cwd}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip()


def is_repository(root: Path) -> bool:
    proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True)
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == root.resolve()


def ensure_repository(root: Path) -> list[str]:
    """Make ``root`` a git repository with at least one commit; returns what was done (for the user)."""
    notes: list[str] = []
    if not is_repository(root):
        git(root, "init", "-q")
        notes.append(f"{root} was not a git repository: ran `git init` (forks need worktrees)")
    if not git(root, "rev-parse", "--verify", "-q", "HEAD", check=False):
        git(root, "add", "-A")
        git(root, "commit", "-q", "--allow-empty", "-m", "Initial commit (by Conductor, before forking)", identity=True)
        notes.append("the repository had no commit: committed the current files as the starting point")
    return notes


def current_branch(root: Path) -> str:
    return git(root, "rev-parse", "--abbrev-ref", "HEAD")


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD")


def is_dirty(root: Path) -> bool:
    return bool(git(root, "status", "--porcelain", "--untracked-files=no"))


@dataclass(frozen=True)
class Worktree:
    path: Path
    branch: str


def fork_branch(plan_id: str, fork_id: str) -> str:
    return f"conductor/{plan_id}/{fork_id}"


def add_worktree(root: Path, path: Path, branch: str, base: str) -> Worktree:
    """Create (or reuse, on resume) the worktree of a fork."""
    if path.exists() and (path / ".git").exists():
        return Worktree(path, branch)
    path.parent.mkdir(parents=True, exist_ok=True)
    git(root, "worktree", "prune")  # forget a worktree whose creation was interrupted
    exists = bool(git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False))
    if exists:
        git(root, "worktree", "add", "-q", str(path), branch)
    else:
        git(root, "worktree", "add", "-q", "-b", branch, str(path), base)
    return Worktree(path, branch)


def commit_all(worktree: Path, message: str) -> str | None:
    """Commit everything in the worktree; returns the commit, or None when nothing changed."""
    git(worktree, "add", "-A")
    if not git(worktree, "status", "--porcelain"):
        return None
    git(worktree, "commit", "-q", "-m", message, identity=True)
    return head(worktree)


def discard_changes(worktree: Path) -> None:
    """Return the worktree to its last commit (a failed attempt leaves nothing behind)."""
    git(worktree, "reset", "-q", "--hard")
    git(worktree, "clean", "-q", "-fd")


def diff_stat(root: Path, base: str, branch: str) -> tuple[int, int]:
    """(files changed, lines added + removed) between ``base`` and ``branch``."""
    out = git(root, "diff", "--numstat", f"{base}...{branch}")
    files = lines = 0
    for row in out.splitlines():
        added, removed, _ = row.split("\t", 2)
        files += 1
        lines += (int(added) if added.isdigit() else 1) + (int(removed) if removed.isdigit() else 0)
    return files, lines


@dataclass(frozen=True)
class MergeOutcome:
    merged: bool
    commit: str | None
    message: str


def merge_branch(root: Path, branch: str, message: str) -> MergeOutcome:
    """Merge ``branch`` into the user's current branch when that is clean; never leaves a half merge."""
    if is_dirty(root):
        return MergeOutcome(False, None, f"your working tree has uncommitted changes; commit or stash them, then run "
                                         f"`git merge {branch}`")
    proc = subprocess.run(["git", *ENGINE_IDENTITY, "merge", "--no-ff", "-q", "-m", message, branch], cwd=root,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        subprocess.run(["git", "merge", "--abort"], cwd=root, capture_output=True)
        why = proc.stdout.strip() or proc.stderr.strip()
        return MergeOutcome(False, None, f"`git merge {branch}` does not apply cleanly ({why}); "
                                         f"resolve it yourself with `git merge {branch}`")
    return MergeOutcome(True, head(root), f"merged {branch}")


def commit_paths(worktree: Path, paths: list[str], message: str) -> str | None:
    """Commit exactly ``paths`` (added, changed or deleted); other work in the worktree is left alone."""
    if not paths:
        return None
    git(worktree, "add", "-A", "--", *paths)
    if not git(worktree, "diff", "--cached", "--name-only"):
        return None
    git(worktree, "commit", "-q", "-m", message, identity=True)
    return head(worktree)


def recover_after_crash(root: Path) -> list[str]:
    """Undo what a killed engine can leave behind in git: index locks and a half-done merge.

    Only the engine writes to its worktrees and merges, so on ``resume`` any lock is stale.
    """
    notes: list[str] = []
    git_dir = root / ".git"
    locks = [git_dir / "index.lock", *git_dir.glob("worktrees/*/index.lock")]
    for lock in locks:
        if lock.exists():
            lock.unlink()
            notes.append(f"removed stale {lock.relative_to(root)}")
    if (git_dir / "MERGE_HEAD").exists():
        git(root, "merge", "--abort", check=False)
        notes.append("aborted a merge the engine had started")
    git(root, "worktree", "prune", check=False)
    return notes



def is_merged(root: Path, branch: str, base: str) -> bool:
    """Whether ``branch`` has commits beyond ``base`` and they are already part of HEAD."""
    tip = git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False)
    if not tip or tip == git(root, "rev-parse", base, check=False):
        return False
    return subprocess.run(["git", "merge-base", "--is-ancestor", branch, "HEAD"], cwd=root,
                          capture_output=True).returncode == 0


def restore_paths(worktree: Path, paths: list[str]) -> None:
    """Put ``paths`` back as they are in the worktree's last commit; files it lacks are removed.

    Used to undo one failed step without touching what concurrent steps of the same fork
    are changing in the same worktree.
    """
    for rel in paths:
        target = worktree / rel
        tracked = subprocess.run(["git", "cat-file", "-e", f"HEAD:{rel}"], cwd=worktree,
                                 capture_output=True).returncode == 0
        if tracked:
            git(worktree, "checkout", "HEAD", "--", rel)
        elif target.is_file() or target.is_symlink():
            target.unlink()
