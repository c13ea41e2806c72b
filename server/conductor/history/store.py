"""The learning store (``.conductor/history.db``): what happened to past steps, and what fixed them.

Why it exists: confidence and repair must get better with use. Every finished step leaves a
row in ``step_outcomes``; every repair that was tried leaves a row in ``repairs`` (the
failure, a summary of its evidence, and the revised instruction that was tried, with
whether it worked). Later steps are compared with those rows by plain token overlap — the
Jaccard similarity of the word sets of instruction + allowed file paths — so the
behaviour is explainable ("3 of 4 similar steps failed with verification_failed") and
needs no model.

Tables (stdlib sqlite3, WAL journal mode so readers never block the writer)::

    step_outcomes(id, recorded_at, plan_id, fork_id, step_id, goal, title, instruction,
                  allowed_files JSON, tokens, outcome, failure_cause, duration_seconds)
    repairs(id, recorded_at, plan_id, fork_id, step_id, failure_cause, evidence_summary,
            original_instruction, original_allowed_files JSON, fix_instruction,
            fix_allowed_files JSON, tokens, succeeded)

``tokens`` holds the step's normalized token set (space separated), computed once on write.
Queries scan the most recent ``scan_limit`` rows (default 5000), which keeps them in the
low milliseconds without an index on similarity.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from conductor.storage.errors import DiskFull, free_bytes

Outcome = Literal["completed", "failed", "skipped"]
OUTCOMES = ("completed", "failed", "skipped")
DEFAULT_MIN_SIMILARITY = 0.3
DEFAULT_SCAN_LIMIT = 5000
SCHEMA_VERSION = 1
NEARLY_FULL_BYTES = 256 * 1024  # an I/O error with less free space than this is a full disk

_STOPWORD_TEXT = """a an and are as at be by do for from has have in into is it its of on or so that the this
    to was were will with you your should must make sure all any each than then them they
    py js ts md txt json yaml yml"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_TOKEN = re.compile(r"[a-z0-9]+")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS step_outcomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at TEXT NOT NULL,
    plan_id TEXT NOT NULL DEFAULT '',
    fork_id TEXT NOT NULL DEFAULT '',
    step_id TEXT NOT NULL DEFAULT '',
    goal TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    instruction TEXT NOT NULL,
    allowed_files TEXT NOT NULL,
    tokens TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('completed', 'failed', 'skipped')),
    failure_cause TEXT,
    duration_seconds REAL
);
CREATE INDEX IF NOT EXISTS step_outcomes_outcome ON step_outcomes (outcome);
CREATE TABLE IF NOT EXISTS repairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at TEXT NOT NULL,
    plan_id TEXT NOT NULL DEFAULT '',
    fork_id TEXT NOT NULL DEFAULT '',
    step_id TEXT NOT NULL DEFAULT '',
    failure_cause TEXT NOT NULL,
    evidence_summary TEXT NOT NULL DEFAULT '',
    original_instruction TEXT NOT NULL,
    original_allowed_files TEXT NOT NULL,
    fix_instruction TEXT NOT NULL,
    fix_allowed_files TEXT NOT NULL,
    tokens TEXT NOT NULL,
    succeeded INTEGER NOT NULL CHECK (succeeded IN (0, 1))
);
"""


def tokenize(instruction: str, allowed_files: Iterable[str] = ()) -> frozenset[str]:
    """The normalized word set a step is compared by: lower-case words of the instruction and
    of each file path (split on ``/``, ``.``, ``_``, ``-`` …), minus stopwords and 1-letter words."""
    text = " ".join([instruction, *allowed_files]).lower()
    return frozenset(t for t in _TOKEN.findall(text) if len(t) > 1 and t not in _STOPWORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b|, 0 when both are empty."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SimilarStep:
    """A past step and how similar it is to the one asked about."""

    similarity: float
    outcome: str
    failure_cause: str | None
    instruction: str
    allowed_files: list[str]
    title: str
    goal: str
    plan_id: str
    step_id: str
    duration_seconds: float | None
    recorded_at: str


@dataclass(frozen=True)
class SuccessRate:
    """How similar past steps went. ``rate`` is similarity-weighted; ``None`` when there are none."""

    similar: int
    succeeded: int
    failed: int
    rate: float | None
    weight: float  # Σ similarity over the similar steps: how much evidence ``rate`` rests on
    common_failure_causes: dict[str, int] = field(default_factory=dict)

    @property
    def detail(self) -> str:
        if not self.similar:
            return "no similar steps on record"
        text = f"{self.succeeded} of {self.similar} similar steps succeeded"
        if self.common_failure_causes:
            causes = ", ".join(f"{c} ×{n}" for c, n in self.common_failure_causes.items())
            text += f" (failures: {causes})"
        return text


@dataclass(frozen=True)
class PastFix:
    """A past failure similar to the current one, and the fix that made it succeed."""

    similarity: float
    failure_cause: str
    evidence_summary: str
    original_instruction: str
    original_allowed_files: list[str]
    fix_instruction: str
    fix_allowed_files: list[str]
    plan_id: str
    step_id: str
    recorded_at: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as journaled in ``step.repair_planned.similar_fixes`` and fed to the repair prompt."""
        return {
            "similarity": round(self.similarity, 3),
            "failure_cause": self.failure_cause,
            "evidence_summary": self.evidence_summary,
            "original_instruction": self.original_instruction,
            "original_allowed_files": self.original_allowed_files,
            "fix_instruction": self.fix_instruction,
            "fix_allowed_files": self.fix_allowed_files,
            "plan_id": self.plan_id,
            "step_id": self.step_id,
        }


class HistoryStore:
    """``history.db``: record outcomes and repairs; find similar steps and their fixes.

    Safe to share between threads (one connection behind a lock) and between processes
    (SQLite locking, WAL, a busy timeout).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        min_similarity: float = DEFAULT_MIN_SIMILARITY,
        scan_limit: int = DEFAULT_SCAN_LIMIT,
    ) -> None:
        self.path = Path(path)
        self.min_similarity = min_similarity
        self.scan_limit = scan_limit
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.DatabaseError as exc:
            full = _disk_full(exc, self.path)
            if full is not None:
                raise full from exc
            raise HistoryError(f"{self.path}: not a usable history database ({exc})") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                full = _disk_full(exc, self.path)
                if full is not None:
                    raise full from exc
                raise

    # -- recording -------------------------------------------------------------------------
    def record_outcome(
        self,
        *,
        instruction: str,
        allowed_files: Sequence[str],
        outcome: Outcome,
        goal: str = "",
        title: str = "",
        failure_cause: str | None = None,
        duration_seconds: float | None = None,
        plan_id: str = "",
        fork_id: str = "",
        step_id: str = "",
    ) -> int:
        """Remember how a step ended; returns the row id."""
        if outcome not in OUTCOMES:
            raise HistoryError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        if outcome == "failed" and not failure_cause:
            failure_cause = "unknown"
        tokens = " ".join(sorted(tokenize(instruction, allowed_files)))
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO step_outcomes (recorded_at, plan_id, fork_id, step_id, goal, title, instruction,"
                " allowed_files, tokens, outcome, failure_cause, duration_seconds)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _now(), plan_id, fork_id, step_id, goal, title, instruction,
                    json.dumps(list(allowed_files)), tokens, outcome, failure_cause, duration_seconds,
                ),
            )  # fmt: skip
            return int(cursor.lastrowid or 0)

    def record_repair(
        self,
        *,
        failure_cause: str,
        original_instruction: str,
        original_allowed_files: Sequence[str],
        fix_instruction: str,
        fix_allowed_files: Sequence[str],
        succeeded: bool,
        evidence_summary: str = "",
        plan_id: str = "",
        fork_id: str = "",
        step_id: str = "",
    ) -> int:
        """Remember a repair that was tried (``succeeded`` once its retry has been verified)."""
        tokens = " ".join(sorted(tokenize(original_instruction, original_allowed_files)))
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO repairs (recorded_at, plan_id, fork_id, step_id, failure_cause,"
                " evidence_summary, original_instruction, original_allowed_files, fix_instruction,"
                " fix_allowed_files, tokens, succeeded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _now(), plan_id, fork_id, step_id, failure_cause, evidence_summary[:2000],
                    original_instruction, json.dumps(list(original_allowed_files)), fix_instruction,
                    json.dumps(list(fix_allowed_files)), tokens, 1 if succeeded else 0,
                ),
            )  # fmt: skip
            return int(cursor.lastrowid or 0)

    # -- querying --------------------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            self._db.row_factory = sqlite3.Row
            try:
                return list(self._db.execute(sql, params))
            finally:
                self._db.row_factory = None

    def similar_steps(
        self,
        instruction: str,
        allowed_files: Sequence[str] = (),
        *,
        limit: int = 10,
        min_similarity: float | None = None,
        exclude_plan: str | None = None,
    ) -> list[SimilarStep]:
        """Past steps at least ``min_similarity`` alike, most similar (then most recent) first.

        ``exclude_plan`` leaves out the steps of one plan (the engine scores a plan's steps on
        the history of earlier plans only, so its forks are judged on equal terms).
        """
        threshold = self.min_similarity if min_similarity is None else min_similarity
        wanted = tokenize(instruction, allowed_files)
        found = []
        for row in self._rows("SELECT * FROM step_outcomes WHERE plan_id != ? ORDER BY id DESC LIMIT ?",
                              (exclude_plan or "\x00", self.scan_limit)):
            similarity = jaccard(wanted, frozenset(row["tokens"].split()))
            if similarity >= threshold and similarity > 0:
                found.append(
                    (
                        -similarity,
                        -row["id"],
                        SimilarStep(
                            similarity=similarity,
                            outcome=row["outcome"],
                            failure_cause=row["failure_cause"],
                            instruction=row["instruction"],
                            allowed_files=json.loads(row["allowed_files"]),
                            title=row["title"],
                            goal=row["goal"],
                            plan_id=row["plan_id"],
                            step_id=row["step_id"],
                            duration_seconds=row["duration_seconds"],
                            recorded_at=row["recorded_at"],
                        ),
                    )
                )
        found.sort(key=lambda item: (item[0], item[1]))
        return [item[2] for item in found[:limit]]

    def success_rate(
        self, instruction: str, allowed_files: Sequence[str] = (), *, min_similarity: float | None = None,
        exclude_plan: str | None = None,
    ) -> SuccessRate:
        """Similarity-weighted success rate of similar completed/failed steps (skipped ones don't count)."""
        steps = [
            s
            for s in self.similar_steps(
                instruction, allowed_files, limit=self.scan_limit, min_similarity=min_similarity,
                exclude_plan=exclude_plan,
            )
            if s.outcome in ("completed", "failed")
        ]
        if not steps:
            return SuccessRate(similar=0, succeeded=0, failed=0, rate=None, weight=0.0)
        weight = sum(s.similarity for s in steps)
        good = sum(s.similarity for s in steps if s.outcome == "completed")
        causes: dict[str, int] = {}
        for s in steps:
            if s.outcome == "failed":
                causes[s.failure_cause or "unknown"] = causes.get(s.failure_cause or "unknown", 0) + 1
        return SuccessRate(
            similar=len(steps),
            succeeded=sum(1 for s in steps if s.outcome == "completed"),
            failed=sum(1 for s in steps if s.outcome == "failed"),
            rate=good / weight,
            weight=weight,
            common_failure_causes=dict(sorted(causes.items(), key=lambda kv: -kv[1])),
        )

    def similar_failures_with_fixes(
        self,
        instruction: str,
        allowed_files: Sequence[str] = (),
        *,
        failure_cause: str | None = None,
        limit: int = 3,
        min_similarity: float | None = None,
    ) -> list[PastFix]:
        """Past failures like this step (same cause first, when given) whose repair succeeded."""
        threshold = self.min_similarity if min_similarity is None else min_similarity
        wanted = tokenize(instruction, allowed_files)
        found = []
        rows = self._rows("SELECT * FROM repairs WHERE succeeded = 1 ORDER BY id DESC LIMIT ?", (self.scan_limit,))
        for row in rows:
            similarity = jaccard(wanted, frozenset(row["tokens"].split()))
            if similarity < threshold or similarity == 0:
                continue
            same_cause = failure_cause is not None and row["failure_cause"] == failure_cause
            found.append(
                (
                    (0 if same_cause else 1, -similarity, -row["id"]),
                    PastFix(
                        similarity=similarity,
                        failure_cause=row["failure_cause"],
                        evidence_summary=row["evidence_summary"],
                        original_instruction=row["original_instruction"],
                        original_allowed_files=json.loads(row["original_allowed_files"]),
                        fix_instruction=row["fix_instruction"],
                        fix_allowed_files=json.loads(row["fix_allowed_files"]),
                        plan_id=row["plan_id"],
                        step_id=row["step_id"],
                        recorded_at=row["recorded_at"],
                    ),
                )
            )
        found.sort(key=lambda item: item[0])
        return [item[1] for item in found[:limit]]

    def counts(self) -> dict[str, int]:
        """Rows per table and outcome (for ``conductor status`` and tests)."""
        result = {"step_outcomes": 0, "repairs": 0, **dict.fromkeys(OUTCOMES, 0)}
        for row in self._rows("SELECT outcome, COUNT(*) AS n FROM step_outcomes GROUP BY outcome"):
            result[row["outcome"]] = row["n"]
            result["step_outcomes"] += row["n"]
        result["repairs"] = self._rows("SELECT COUNT(*) AS n FROM repairs")[0]["n"]
        return result


def _disk_full(exc: sqlite3.Error, path: Path) -> DiskFull | None:
    """:class:`DiskFull` when SQLite failed for want of space (SQLITE_FULL, or an I/O error on a full disk)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return DiskFull(path)
    free = free_bytes(path)
    if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN) and free is not None and free < NEARLY_FULL_BYTES:
        return DiskFull(path, free=free)
    return None


class HistoryError(ValueError):
    """Bad input to the history store, or a file that is not a history database."""
