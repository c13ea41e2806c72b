"""The learning store: outcomes and repairs go into real SQLite; similar steps and fixes come out."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conductor.history import HistoryError, HistoryStore, jaccard, tokenize
from conductor.project.layout import ProjectLayout

REPO = Path(__file__).resolve().parents[2]
MIGRATION = "Add a migration that creates the users table"
MIGRATION_FILES = ["migrations/0002_users.py"]


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    with HistoryStore(ProjectLayout.at(tmp_path).history_db) as opened:
        yield opened


def test_similarity_is_word_overlap_of_instruction_and_file_paths() -> None:
    tokens = tokenize("Add the Users table to models", ["app/models/user_table.py"])
    assert tokens == frozenset({"add", "users", "table", "models", "app", "user"})
    assert jaccard(frozenset({"a1", "b1"}), frozenset({"b1", "c1"})) == pytest.approx(1 / 3)
    assert jaccard(frozenset(), frozenset()) == 0.0


def test_it_is_a_wal_sqlite_file_in_the_conductor_folder(store: HistoryStore, tmp_path: Path) -> None:
    assert store.path == tmp_path.resolve() / ".conductor" / "history.db"
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"step_outcomes", "repairs"} <= tables


def test_similar_steps_are_ranked_by_similarity(store: HistoryStore) -> None:
    store.record_outcome(
        instruction=MIGRATION,
        allowed_files=MIGRATION_FILES,
        outcome="failed",
        failure_cause="verification_failed",
        goal="users",
        title="migration",
        duration_seconds=3.5,
    )
    store.record_outcome(
        instruction="Add a migration for the orders table",
        allowed_files=["migrations/0003_orders.py"],
        outcome="completed",
    )
    store.record_outcome(instruction="Write the README introduction", allowed_files=["README.md"], outcome="completed")

    similar = store.similar_steps("Add a migration that creates the users table", ["migrations/0004_users.py"])
    assert [s.outcome for s in similar] == ["failed", "completed"]
    assert similar[0].similarity > similar[1].similarity
    assert similar[0].failure_cause == "verification_failed" and similar[0].duration_seconds == 3.5
    assert similar[0].allowed_files == MIGRATION_FILES


def test_success_rate_counts_similar_finished_steps_weighted_by_similarity(store: HistoryStore) -> None:
    assert store.success_rate(MIGRATION, MIGRATION_FILES).rate is None
    for outcome in ("completed", "failed", "failed", "skipped"):
        store.record_outcome(
            instruction=MIGRATION,
            allowed_files=MIGRATION_FILES,
            outcome=outcome,  # type: ignore[arg-type]
            failure_cause="timeout" if outcome == "failed" else None,
        )
    rate = store.success_rate(MIGRATION, MIGRATION_FILES)
    assert (rate.similar, rate.succeeded, rate.failed) == (3, 1, 2)
    assert rate.rate == pytest.approx(1 / 3)
    assert rate.common_failure_causes == {"timeout": 2}
    assert rate.detail == "1 of 3 similar steps succeeded (failures: timeout ×2)"


def test_past_failures_come_back_with_the_fix_that_worked_same_cause_first(store: HistoryStore) -> None:
    store.record_repair(
        failure_cause="out_of_scope",
        original_instruction=MIGRATION,
        original_allowed_files=MIGRATION_FILES,
        fix_instruction="also register it",
        fix_allowed_files=[*MIGRATION_FILES, "migrations/__init__.py"],
        succeeded=True,
    )
    store.record_repair(
        failure_cause="verification_failed",
        original_instruction=MIGRATION,
        original_allowed_files=MIGRATION_FILES,
        evidence_summary="IntegrityError: users.email",
        fix_instruction="Make email nullable in the migration",
        fix_allowed_files=MIGRATION_FILES,
        succeeded=True,
    )
    store.record_repair(
        failure_cause="verification_failed",
        original_instruction=MIGRATION,
        original_allowed_files=MIGRATION_FILES,
        fix_instruction="this did not work",
        fix_allowed_files=MIGRATION_FILES,
        succeeded=False,
    )

    fixes = store.similar_failures_with_fixes(MIGRATION, MIGRATION_FILES, failure_cause="verification_failed")
    assert [f.fix_instruction for f in fixes] == ["Make email nullable in the migration", "also register it"]
    assert fixes[0].evidence_summary == "IntegrityError: users.email"
    assert fixes[0].to_dict()["fix_allowed_files"] == MIGRATION_FILES
    assert store.similar_failures_with_fixes("Write the README introduction", ["README.md"]) == []


def test_it_remembers_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with HistoryStore(path) as first:
        first.record_outcome(instruction=MIGRATION, allowed_files=MIGRATION_FILES, outcome="completed")
    with HistoryStore(path) as second:
        assert second.counts() == {"step_outcomes": 1, "repairs": 0, "completed": 1, "failed": 0, "skipped": 0}


def test_bad_input_is_refused_clearly(store: HistoryStore, tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="outcome must be one of completed, failed, skipped"):
        store.record_outcome(instruction="x", allowed_files=[], outcome="exploded")  # type: ignore[arg-type]
    assert store.counts()["step_outcomes"] == 0
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="not a usable history database"):
        HistoryStore(garbage)


def test_several_processes_can_record_at_once(store: HistoryStore) -> None:
    writer = (
        "import sys\n"
        "from conductor.history import HistoryStore\n"
        "with HistoryStore(sys.argv[1]) as s:\n"
        "    for i in range(50):\n"
        "        s.record_outcome(instruction=f'step {i} of ' + sys.argv[2], allowed_files=['a.py'],\n"
        "                         outcome='completed')\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", writer, str(store.path), f"w{n}"], cwd=REPO) for n in range(3)]
    assert [p.wait(timeout=120) for p in processes] == [0, 0, 0]
    assert store.counts()["completed"] == 150
