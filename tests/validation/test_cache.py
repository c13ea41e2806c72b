"""``conductor validate`` skips unchanged files, and only those: a cached answer is always the answer.

The cache (``conductor.validation.cache``) is keyed by the bytes of the file, its kind and path,
the project's policy (for tasks and plans) and the code of the rules. These cases run the real
command twice and compare: the second run (from the cache) must print exactly what a run
without the cache prints, and every change that could change the answer must be seen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conductor.validation.cache import ValidationCache, cache_dir
from conductor.validation.diagnostics import Diagnostic, Range, Severity

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    done = subprocess.run([sys.executable, "-m", "conductor", "init", "."], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    steps = root / ".conductor" / "handoff" / "plan_x" / "fork_main" / "pending"
    steps.mkdir(parents=True)
    shutil.copy(CORPUS / "valid" / "project" / "step_001.task.json", steps / "step_001.task.json")
    shutil.copy(CORPUS / "broken" / "task" / "duplicate_key" / "step_001.task.json", steps / "step_002.task.json")
    return root


def validate(root: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "conductor", "validate", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_a_second_run_answers_from_the_cache_exactly_as_a_fresh_run(project: Path, env: dict[str, str],
                                                                    tmp_path: Path):
    first = validate(project, env, "--json")
    files = list((tmp_path / "xdg" / "conductor" / "validate").iterdir())
    assert len(files) == 1, "one cache file for the project, in the user's cache folder"
    assert not any(p.name.startswith(".validate") for p in project.rglob("*")), "nothing is written to the project"
    second = validate(project, env, "--json")
    fresh = validate(project, env, "--json", "--no-cache")
    assert first == second == fresh
    assert first[0] == 1 and "json/duplicate-key" in first[1]
    assert validate(project, env) == validate(project, env, "--no-cache")


def test_a_changed_byte_is_validated_again(project: Path, env: dict[str, str]):
    task = next(project.rglob("step_001.task.json"))
    assert validate(project, env)[0] == 1  # step_002 is broken; step_001 is clean and now cached
    data = json.loads(task.read_text())
    data["allowed_files"] = ["../outside.py"]
    task.write_text(json.dumps(data))
    code, out, _ = validate(project, env)
    assert "step_001.task.json" in out
    assert (code, out) == validate(project, env, "--no-cache")[:2]


def test_a_policy_change_re_judges_unchanged_tasks(project: Path, env: dict[str, str]):
    """The task is unchanged, but the policy now calls its score 0.9 `medium`: the cached answer is not used."""
    code, out, _ = validate(project, env)
    assert "confidence-mismatch" not in out
    policy = project / ".conductor" / "policy.yaml"
    policy.write_text("behavior:\n  caution_below: 0.95\n")
    code, out, _ = validate(project, env)
    assert "step_001.task.json" in out and "task/confidence-mismatch" in out
    assert (code, out) == validate(project, env, "--no-cache")[:2]


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"fingerprint": 1, "entries": []}', b"\0" * 100])
def test_a_torn_or_foreign_cache_file_is_an_empty_cache(project: Path, env: dict[str, str], tmp_path: Path,
                                                        content: bytes):
    expected = validate(project, env, "--no-cache")
    validate(project, env)
    (cache,) = (tmp_path / "xdg" / "conductor" / "validate").iterdir()
    cache.write_bytes(content)
    assert validate(project, env) == expected
    assert json.loads(cache.read_text())["entries"], "the damaged cache was replaced by a good one"


def test_a_forged_entry_for_another_fingerprint_is_never_used(project: Path, env: dict[str, str], tmp_path: Path):
    """Entries written by other rules (another version, other schemas) do not answer for this code."""
    validate(project, env)
    (cache,) = (tmp_path / "xdg" / "conductor" / "validate").iterdir()
    data = json.loads(cache.read_text())
    data["fingerprint"] = "0" * 64
    data["entries"] = {key: [] for key in data["entries"]}  # "no problems" for every file, the broken one too
    cache.write_text(json.dumps(data))
    code, out, _ = validate(project, env)
    assert code == 1 and "json/duplicate-key" in out


def test_a_symlinked_or_special_cache_file_is_not_read_and_not_followed(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "proj"
    (root / ".conductor").mkdir(parents=True)
    cache = ValidationCache.for_project(root)
    assert cache.file is not None and cache.file.parent == cache_dir()
    key = cache.key("{}", "task", root / "a.task.json", cache.policy_key(root))
    diag = Diagnostic(Range(1, 2, 3, 4), Severity.WARNING, "task/x", "message", {"n": 1})
    cache.put(key, [diag])
    cache.save()
    assert ValidationCache.for_project(root).get(key) == [diag]

    victim = tmp_path / "victim.json"
    victim.write_text(cache.file.read_text())
    cache.file.unlink()
    cache.file.symlink_to(victim)
    assert ValidationCache.for_project(root).get(key) is None, "a symlink is not followed"
    again = ValidationCache.for_project(root)
    again.put(key, [])
    again.save()
    assert not cache.file.is_symlink() and victim.read_text() != cache.file.read_text(), "replaced, not written through"

    cache.file.unlink()
    os.mkfifo(cache.file)
    assert ValidationCache.for_project(root).get(key) is None, "a FIFO is never opened for a blocking read"


def test_the_policy_key_follows_the_policy_bytes(tmp_path: Path):
    root = tmp_path / "proj"
    (root / ".conductor").mkdir(parents=True)
    missing = ValidationCache(None).policy_key(root)
    (root / ".conductor" / "policy.yaml").write_text("behavior:\n  caution_below: 0.9\n")
    first = ValidationCache(None).policy_key(root)
    (root / ".conductor" / "policy.yaml").write_text("behavior:\n  caution_below: 0.8\n")
    second = ValidationCache(None).policy_key(root)
    assert len({missing, first, second}) == 3
