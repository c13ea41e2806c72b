"""Enforcement: allowed files are anchored at the root, protected patterns use gitignore rules."""

from __future__ import annotations

from conductor.contract.globs import glob_problem, matches_allowed, matches_protected
from conductor.policy import check_changes, is_path_allowed, merge
from conductor.policy.levels import PolicyLevel
from conductor.validation import validate_document


def policy(text: str):
    doc, diags = validate_document(text, "policy")
    assert not diags
    return merge([PolicyLevel.from_document(doc, "project", "policy.yaml")])


def test_allowed_entries_are_anchored_and_may_be_globs():
    assert matches_allowed("hello.py", ["hello.py"])
    assert not matches_allowed("src/hello.py", ["hello.py"])
    assert matches_allowed("src/pkg/mod.py", ["src/**/*.py"])
    assert not matches_allowed("src/pkg/mod.txt", ["src/**/*.py"])
    assert not matches_allowed("anything", [])


def test_protected_patterns_match_at_any_depth_like_gitignore():
    assert matches_protected("poetry.lock", ["*.lock"]) == "*.lock"
    assert matches_protected("sub/dir/yarn.lock", ["*.lock"]) == "*.lock"
    assert matches_protected("migrations/0001.py", ["migrations/*"]) == "migrations/*"
    assert matches_protected("src/app.py", ["*.lock", "migrations/*"]) is None


def test_is_path_allowed_names_the_reason():
    eff = policy("file_rules:\n  protected_patterns: ['*.lock']\n")
    assert is_path_allowed("a.py", ["a.py"], eff) is None
    assert is_path_allowed("b.py", ["a.py"], eff).code == "evidence/outside-allowed-files"
    assert is_path_allowed("x.lock", ["x.lock"], eff).code == "evidence/protected-file"
    assert is_path_allowed("../x", ["../x"], eff).code == "evidence/path-escapes"
    assert is_path_allowed("/etc/passwd", ["/etc/passwd"], eff).code == "evidence/path-absolute"


def test_check_changes_counts_diff_lines_and_files():
    eff = policy("behavior:\n  max_diff_lines: 10\n  max_files_changed: 1\n")
    codes = [v.code for v in check_changes(["a.py", "b.py"], 11, ["a.py", "b.py"], eff)]
    assert codes == ["evidence/diff-too-large", "evidence/too-many-files"]
    assert check_changes(["a.py"], 10, ["a.py"], eff) == []


def test_glob_problems():
    assert glob_problem("*.lock") is None
    assert glob_problem("src/**/test_*.py") is None
    assert "unclosed" in glob_problem("src/[ab")
    assert "whole path segment" in glob_problem("src**")
    assert glob_problem("") == "pattern is empty"
