"""A fork branch is read from its loose ref without starting git, and reads exactly what git reads."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conductor.git.branches import create_ref, read_ref

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t"}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, env=ENV).stdout.strip()


def repo(tmp_path: Path) -> tuple[Path, str, str]:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "a").write_text("a\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "one")
    first = git(root, "rev-parse", "HEAD")
    (root / "a").write_text("b\n")
    git(root, "commit", "-qam", "two")
    return root, first, git(root, "rev-parse", "HEAD")


def test_a_fork_branch_reads_what_git_reads_loose_packed_or_moved(tmp_path: Path) -> None:
    root, first, second = repo(tmp_path)
    ref = "refs/heads/conductor/p1/main"
    assert read_ref(root, ref) is None
    create_ref(root, ref, first)
    assert read_ref(root, ref) == first == git(root, "rev-parse", ref)
    git(root, "pack-refs", "--all")  # no loose file any more: git is asked
    assert not (root / ".git" / ref).exists()
    assert read_ref(root, ref) == first
    git(root, "update-ref", ref, second, first)  # a loose ref again, newer than the packed one
    assert read_ref(root, ref) == second


def test_a_symlinked_or_malformed_fork_ref_is_left_to_git(tmp_path: Path) -> None:
    root, first, second = repo(tmp_path)
    ref = "refs/heads/conductor/p1/main"
    create_ref(root, ref, first)
    loose = root / ".git" / ref
    outside = tmp_path / "elsewhere"
    outside.write_text(second + "\n")
    loose.unlink()
    os.symlink(outside, loose)
    assert read_ref(root, ref) == git(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
    loose.unlink()
    loose.write_text("ref: refs/heads/master\n")
    assert read_ref(root, ref) == git(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
