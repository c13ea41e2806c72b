"""A spare working copy, made ahead of an attempt, is used only when nothing touched it since it was made,
and once adopted it is exactly the fresh copy of the attempt's base that it stands in for."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from conductor.git import copies

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t"}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, env=ENV).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository with two commits: the second adds, changes, deletes, makes executable and links."""
    root = tmp_path / "repo"
    (root / "src" / "old").mkdir(parents=True)
    (root / "README.md").write_text("readme\n")
    (root / "src" / "a.py").write_text("a\n")
    (root / "src" / "old" / "gone.txt").write_text("deleted by the second commit\n")
    (root / "run.sh").write_text("echo hi\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first")
    first = git(root, "rev-parse", "HEAD")
    (root / "src" / "a.py").write_text("a changed\n")
    (root / "src" / "new").mkdir()
    (root / "src" / "new" / "b.py").write_text("b\n")
    (root / "src" / "old" / "gone.txt").unlink()
    (root / "src" / "old").rmdir()
    os.chmod(root / "run.sh", 0o755)
    os.symlink("README.md", root / "link")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "second")
    return root, first, git(root, "rev-parse", "HEAD")


def tree(folder: Path) -> dict[str, tuple[str, str]]:
    """Every path of a working copy outside ``.git``: its type and exec bit, and content or target."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", "")
        else:
            out[rel] = ("exec" if st.st_mode & 0o100 else "file", path.read_text())
    return out


def test_an_adopted_spare_is_the_fresh_copy_of_the_new_base(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    root, first, second = repo
    spare = copies.prepare(root, tmp_path / "spare", first)
    dest = tmp_path / "attempts" / "step_002.1"
    assert copies.adopt(root, spare, dest, second)
    fresh = copies.create(root, tmp_path / "fresh", second)
    assert tree(dest) == tree(fresh)
    assert tree(dest)["run.sh"][0] == "exec" and tree(dest)["link"] == ("link", "README.md")
    assert "src/old" not in tree(dest)
    assert not (tmp_path / "spare").exists()
    # the copy's own branch is at the new base and its index matches the files (nothing to commit)
    assert (dest / ".git" / "refs" / "heads" / copies.BRANCH).read_text().strip() == second
    assert git(dest, "status", "--porcelain") == ""


def test_a_spare_at_the_same_base_is_moved_as_it_is(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    root, _first, second = repo
    spare = copies.prepare(root, tmp_path / "spare", second)
    dest = tmp_path / "step_001.1"
    assert copies.adopt(root, spare, dest, second)
    assert tree(dest) == tree(copies.create(root, tmp_path / "fresh", second))


@pytest.mark.parametrize("tamper", ["modify", "same-size-rewrite", "add", "delete", "chmod", "hook", "symlink"])
def test_a_spare_touched_after_it_was_made_is_never_used(repo: tuple[Path, str, str], tmp_path: Path,
                                                          tamper: str) -> None:
    root, first, second = repo
    spare = copies.prepare(root, tmp_path / "spare", first)
    where = tmp_path / "spare"
    if tamper == "modify":
        (where / "README.md").write_text("planted instructions for the next agent\n")
    elif tamper == "same-size-rewrite":
        before = (where / "README.md").stat()
        (where / "README.md").write_text("README\n")
        os.utime(where / "README.md", ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back; ctime cannot be
    elif tamper == "add":
        (where / "src" / "notes.md").write_text("an untracked file the next agent would read\n")
    elif tamper == "delete":
        (where / "src" / "a.py").unlink()
    elif tamper == "chmod":
        os.chmod(where / "README.md", 0o755)
    elif tamper == "hook":
        (where / ".git" / "hooks").mkdir()
        (where / ".git" / "hooks" / "post-checkout").write_text("#!/bin/sh\ntouch /tmp/pwned\n")
    elif tamper == "symlink":
        (where / "src" / "a.py").unlink()
        os.symlink("/etc/passwd", where / "src" / "a.py")
    dest = tmp_path / "step_002.1"
    assert not copies.adopt(root, spare, dest, second)
    assert not dest.exists() and not where.exists()
    # what the caller does then: a fresh copy, which is clean
    assert tree(copies.create(root, dest, second)) == tree(copies.create(root, tmp_path / "fresh", second))


def test_a_spare_that_vanished_is_not_used(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    root, first, second = repo
    spare = copies.prepare(root, tmp_path / "spare", first)
    copies.remove(tmp_path / "spare")
    assert not copies.adopt(root, spare, tmp_path / "step_002.1", second)
    assert not (tmp_path / "step_002.1").exists()


@pytest.mark.parametrize("tamper", ["untracked", "modified", "ignored", "config", "hook"])
def test_a_spare_written_into_while_it_was_being_made_is_refused(repo: tuple[Path, str, str], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  tamper: str) -> None:
    root, _first, _second = repo
    (root / ".gitignore").write_text("build/\n")
    git(root, "add", ".gitignore")
    git(root, "commit", "-qm", "ignore build/")
    base = git(root, "rev-parse", "HEAD")
    real_create = copies.create

    def create_then_someone_writes(repo: Path, dest: Path, commit: str) -> Path:
        made = real_create(repo, dest, commit)  # a writer racing the making lands before the snapshot
        if tamper == "untracked":
            (made / "notes.md").write_text("planted\n")
        elif tamper == "modified":
            (made / "README.md").write_text("planted instructions\n")
        elif tamper == "ignored":
            (made / "build").mkdir()
            (made / "build" / "out.txt").write_text("planted where git ignores\n")
        elif tamper == "config":
            with open(made / ".git" / "config", "a") as fh:
                fh.write('[filter "x"]\n\tsmudge = touch /tmp/pwned\n')
        elif tamper == "hook":
            (made / ".git" / "hooks").mkdir()
        return made

    monkeypatch.setattr(copies, "create", create_then_someone_writes)
    with pytest.raises(copies.SpareTouched):
        copies.prepare(root, tmp_path / "spare", base)
