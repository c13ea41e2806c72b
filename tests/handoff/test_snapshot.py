"""Snapshots see real changes (git and plain folders); rollback touches only the named files."""

from __future__ import annotations

from pathlib import Path

from conductor.handoff.rollback import rollback
from conductor.handoff.snapshot import compare, count_diff_lines, take_snapshot
from conductor.project.layout import ProjectLayout


def mutate(root: Path) -> None:
    (root / "new.txt").write_text("a\nb\n")
    (root / "src" / "app.py").write_text("print('app')\nprint('more')\n")
    (root / "README.md").unlink()
    (root / "blob.bin").write_bytes(b"\0\1\2")
    (root / ".conductor" / "ignored.txt").write_text("conductor's own files are not the workspace\n")


def check(root: Path, method: str) -> None:
    before = take_snapshot(root, ["*.lock", ".env"])
    assert before.method == method
    mutate(root)
    after = take_snapshot(root, ["*.lock", ".env"], baseline=before)
    changes = compare(before, after)
    assert changes.created == ["blob.bin", "new.txt"]
    assert changes.modified == ["src/app.py"]
    assert changes.deleted == ["README.md"]
    assert changes.per_file == {"blob.bin": 1, "new.txt": 2, "src/app.py": 1, "README.md": 1}
    report = rollback(before, ["new.txt", "README.md", "src/app.py", "blob.bin"])
    assert sorted(report.removed) == ["blob.bin", "new.txt"]
    assert sorted(report.restored) == ["README.md", "src/app.py"]
    assert compare(before, take_snapshot(root, ["*.lock"])).changed == []


def test_git_workspace(project: ProjectLayout) -> None:
    check(project.root, "git")


def test_plain_workspace(plain_project: ProjectLayout) -> None:
    check(plain_project.root, "walk")


def test_gitignored_protected_file_is_still_watched(project: ProjectLayout) -> None:
    root = project.root
    (root / ".gitignore").write_text(".conductor/\n.env\nbuild/\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_text("x")
    before = take_snapshot(root, [".env"])
    assert ".env" in before.files and "build/out.o" not in before.files
    (root / ".env").write_text("SECRET=2\n")
    assert compare(before, take_snapshot(root, [".env"], baseline=before)).modified == [".env"]
    assert rollback(before, [".env"]).restored == [".env"]
    assert (root / ".env").read_text() == "SECRET=1\n"


def test_rollback_restores_tracked_file_from_git(project: ProjectLayout) -> None:
    root = project.root
    before = take_snapshot(root)
    assert before.files["src/app.py"].content is None  # git holds it
    (root / "src" / "app.py").write_text("broken\n")
    (root / "README.md").write_text("also changed, but not rolled back\n")
    report = rollback(before, ["src/app.py"])
    assert report.restored == ["src/app.py"]
    assert (root / "src" / "app.py").read_text() == "print('app')\n"
    assert (root / "README.md").read_text() == "also changed, but not rolled back\n"


def test_diff_line_rules() -> None:
    assert count_diff_lines(b"a\nb\nc\n", b"a\nB\nc\nd\n") == 3
    assert count_diff_lines(None, b"x\ny\n") == 2
    assert count_diff_lines(b"x\n", None) == 1
    assert count_diff_lines(b"\0binary", b"\0other") == 1
