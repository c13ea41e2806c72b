"""The user's own repository: making one, what is checked out, and the one merge Conductor does there.

Why a module of its own: these are the only git commands that touch the user's checkout, index
or current branch — the initial commit of a project that has none (never staging ignored or
protected files), the final merge of the winning fork (only when the working tree is clean,
never half-applied), and the clean-up after a crash. Everything runs through
:func:`conductor.git.command.run`: hooks off, a fixed identity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conductor.git.command import GitError, git, run

SECRET_NAMES = (".env", ".env.*", "*.pem", "*.key", "id_rsa", "id_ed25519", ".netrc", "*.p12")


def is_repository(root: Path) -> bool:
    proc = run(root, "rev-parse", "--show-toplevel", check=False)
    return proc.returncode == 0 and Path(proc.stdout.decode().strip()).resolve() == root.resolve()


def ensure_repository(root: Path, never_commit: Callable[[str], bool] | None = None) -> list[str]:
    """Make ``root`` a git repository with at least one commit; returns what was done (for the user).

    The first commit stages what ``git add -A`` would, minus every path ``never_commit`` names
    (protected patterns, files that hold secrets): Conductor never commits them for you.
    """
    notes: list[str] = []
    if not is_repository(root):
        git(root, "init", "-q")
        notes.append(f"{root} was not a git repository: ran `git init` (forks need a repository)")
    if not git(root, "rev-parse", "--verify", "-q", "HEAD", check=False):
        git(root, "add", "-A")
        staged = [p for p in run(root, "ls-files", "-z", "--cached").stdout.decode("utf-8", "surrogateescape")
                  .split("\0") if p]
        held = [p for p in staged if never_commit is not None and never_commit(p)]
        if held:
            run(root, "rm", "-q", "--cached", "--", *held)
            notes.append(f"not committed (protected or secret): {', '.join(held[:10])}")
        git(root, "commit", "-q", "--allow-empty", "-m", "Initial commit (by Conductor, before forking)")
        notes.append("the repository had no commit: committed the current files as the starting point")
    return notes


def current_branch(root: Path) -> str:
    return git(root, "rev-parse", "--abbrev-ref", "HEAD")


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD")


def is_dirty(root: Path) -> bool:
    return bool(git(root, "status", "--porcelain", "--untracked-files=no"))


def diff_stat(root: Path, base: str, branch: str) -> tuple[int, int]:
    """(files changed, lines added + removed) between ``base`` and ``branch``."""
    out = git(root, "diff", "--no-ext-diff", "--no-textconv", "--numstat", f"{base}...{branch}")
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
    proc = run(root, "merge", "--no-ff", "--no-edit", "-q", "-m", message, branch, check=False)
    if proc.returncode != 0:
        run(root, "merge", "--abort", check=False)
        why = (proc.stdout or proc.stderr).decode("utf-8", "replace").strip()
        return MergeOutcome(False, None, f"`git merge {branch}` does not apply cleanly ({why}); "
                                         f"resolve it yourself with `git merge {branch}`")
    return MergeOutcome(True, head(root), f"merged {branch}")


def is_merged(root: Path, branch: str, base: str) -> bool:
    """Whether ``branch`` has commits beyond ``base`` and they are already part of HEAD."""
    tip = git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False)
    if not tip or tip == git(root, "rev-parse", base, check=False):
        return False
    return run(root, "merge-base", "--is-ancestor", branch, "HEAD", check=False).returncode == 0


def recover_after_crash(root: Path) -> list[str]:
    """Undo what a killed engine can leave behind in the user's repository: a lock, a half-done merge.

    Only Conductor's final merge writes there, so on ``resume`` a lock it left is stale.
    """
    notes: list[str] = []
    gitdir = Path(git(root, "rev-parse", "--absolute-git-dir"))
    lock = gitdir / "index.lock"
    if lock.exists():
        lock.unlink()
        notes.append(f"removed a stale {lock.name}")
    if (gitdir / "MERGE_HEAD").exists():
        run(root, "merge", "--abort", check=False)
        notes.append("aborted a merge the engine had started")
    return notes


__all__ = ["GitError", "MergeOutcome", "current_branch", "diff_stat", "ensure_repository", "head", "is_dirty",
           "is_merged", "is_repository", "merge_branch", "recover_after_crash"]
