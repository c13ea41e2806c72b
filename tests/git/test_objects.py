"""Conductor writes a step's trees and commit itself; they are exactly what git's own plumbing writes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conductor.git.objects import (
    MODE_EXEC,
    MODE_FILE,
    MODE_LINK,
    Entry,
    build_commit,
    build_commit_with_git,
    objects_dir,
    tree_index,
    write_blob,
)

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src" / "deep" / "er").mkdir(parents=True)
    (root / "README.md").write_text("readme\n")
    (root / "src" / "a.py").write_text("a\n")
    (root / "src" / "a-b.py").write_text("sorts before a/ in git's order\n")
    (root / "src" / "deep" / "er" / "x.txt").write_text("x\n")
    (root / "gone").mkdir()
    (root / "gone" / "only.txt").write_text("the only file of its folder\n")
    (root / "swap").write_text("a file that becomes a folder\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=ENV)
    return root


def blob(repo: Path, data: bytes) -> str:
    return write_blob(objects_dir(repo), data)


def test_trees_and_commit_equal_gits_own(repo: Path) -> None:
    base = tree_index(repo, "HEAD")
    changes = {
        "new/nested/file.txt": Entry(MODE_FILE, blob(repo, b"new\n")),
        "src/a.py": Entry(MODE_EXEC, base.entries["src/a.py"].sha),  # mode change only
        "src/deep/er/x.txt": Entry(MODE_FILE, blob(repo, b"changed\n")),
        "src/link": Entry(MODE_LINK, blob(repo, b"a.py")),
        "gone/only.txt": None,  # its folder disappears with it
        "README.md": None,
    }
    ours = build_commit(repo, base, changes, "step_001: test", "1700000000 +0000")
    gits = build_commit_with_git(repo, base.commit, changes, "step_001: test", "1700000000 +0000")
    assert ours == gits
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    listing = subprocess.run(["git", "ls-tree", "-r", "--name-only", ours[0]], cwd=repo, capture_output=True,
                             text=True, check=True).stdout.split()
    assert "gone/only.txt" not in listing and "README.md" not in listing and "new/nested/file.txt" in listing


def test_a_file_replaced_by_a_folder_and_back(repo: Path) -> None:
    base = tree_index(repo, "HEAD")
    ours, _ = build_commit(repo, base, {"swap": None, "swap/inner.txt": Entry(MODE_FILE, blob(repo, b"i\n"))},
                           "m", "1700000000 +0000")
    shown = subprocess.run(["git", "show", f"{ours}:swap/inner.txt"], cwd=repo, capture_output=True, text=True)
    assert shown.stdout == "i\n"
    back = tree_index(repo, ours)
    again, _ = build_commit(repo, back, {"swap/inner.txt": None, "swap": Entry(MODE_FILE, blob(repo, b"f\n"))},
                            "m", "1700000000 +0000")
    assert subprocess.run(["git", "show", f"{again}:swap"], cwd=repo, capture_output=True, text=True).stdout == "f\n"
    assert subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True).returncode == 0


def test_no_change_keeps_the_base_tree(repo: Path) -> None:
    base = tree_index(repo, "HEAD")
    commit, tree = build_commit(repo, base, {}, "empty", "1700000000 +0000")
    assert tree == base.trees[""] and commit != base.commit
