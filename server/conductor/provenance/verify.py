"""Checks every signed provenance record, every chained log and the key pin of a project.

Why a module of its own: ``conductor verify`` is how a user (or CI) proves the record of
what agents did was not altered. It fails closed — whatever it cannot prove is a problem,
named with its file and line:

* **the pin**: ``.conductor/trust.json`` exists and parses, its rotations are signed by a
  trusted key; the key in ``.conductor/keys/`` is present and trusted (a deleted or replaced
  key is named); a plan whose journal pins a key (``plan.created``'s ``key_fingerprint``)
  accepts only that key and keys rotated in from it;
* **every chained log** (each fork's ``audit.log``, each plan's ``journal.jsonl``) is an
  unbroken chain (``storage.verify_chain``) and agrees with its signed head
  (``<log>.head``): fewer lines than the head counts is truncation, named at the line where
  the log now ends; lines written after the newest head (a crash between the append and the
  head) are a note;
* **every provenance envelope** parses, is signed by a trusted key, its payload is an in-toto
  Statement of Conductor's predicate type about this step, and its subjects are the
  predicate's products;
* **the provenance chain**: each ``previous_digest`` names another record of the fork,
  exactly one record starts it, none has two successors, ``provenance.head`` names the newest;
* **cross-checks**: each record's ``audit_anchor`` line is still in the audit log with the
  same digest, each verdict line of the audit log names a record that still exists
  unchanged, each ``step.verified`` of a journal names a record that exists, and a
  projection checkpoint equals a replay of the journal up to the event it covers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conductor.contract.provenance import subjects_of
from conductor.journal.projection import check_against_replay
from conductor.project.layout import ProjectLayout
from conductor.provenance.chain import HEAD_FILE, chain_head
from conductor.provenance.dsse import EnvelopeError, open_json
from conductor.provenance.heads import HEAD_PAYLOAD_TYPE
from conductor.provenance.keys import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, key_id_of, load_private_key, load_public_key
from conductor.provenance.signing import open_statement, record_digest
from conductor.provenance.trust import Trust, TrustError, committed_members, read_trust
from conductor.storage.chainlog import head_path, read_head, verify_chain

VERDICT_EVENTS = ("step.completed", "step.failed")


@dataclass(frozen=True)
class Problem:
    """One broken link: the file, and the line (logs) or step (provenance) where it breaks."""

    file: str
    message: str
    line: int | None = None
    step: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.step is not None:
            where += f" ({self.step})"
        return f"{where}: {self.message}"


@dataclass
class VerifyReport:
    logs_checked: int = 0
    records_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "logs_checked": self.logs_checked,
            "records_checked": self.records_checked,
            "problems": [asdict(p) for p in self.problems],
            "notes": self.notes,
        }


def provenance_files(fork_dir: Path) -> list[Path]:
    files: list[Path] = []
    for state in ("completed", "failed"):
        base = fork_dir / state
        if base.is_dir():
            files.extend(base.rglob("*.provenance.json"))
    return sorted(files)


def _json_line(text: str, needle: str) -> int:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def _log_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    if not path.exists():
        return out
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append((number, rec))
    return out


class _Verifier:
    def __init__(self, layout: ProjectLayout, report: VerifyReport) -> None:
        self.layout = layout
        self.report = report
        self.trust: Trust | None = None
        self.trusted: dict[str, bytes] = {}
        self.plan_pins: dict[str, str] = {}  # plan id → pinned key id

    def rel(self, path: Path) -> str:
        try:
            return self.layout.relative(path)
        except ValueError:
            return str(path)

    def problem(self, path: Path, message: str, line: int | None = None, step: str | None = None) -> None:
        self.report.problems.append(Problem(self.rel(path), message, line=line, step=step))

    # -- the pin ---------------------------------------------------------------------------
    def check_trust(self, anything_signed: bool) -> None:
        layout = self.layout
        try:
            self.trust = read_trust(layout.trust_file, committed_members(layout))
        except TrustError as exc:
            text = str(exc)
            line = None
            head, _, rest = text.partition(": ")
            if ":" in head and head.rsplit(":", 1)[1].isdigit():
                line = int(head.rsplit(":", 1)[1])
            self.problem(layout.trust_file, rest or text, line=line or 1)
            return
        if self.trust is None:
            if anything_signed:
                self.problem(layout.trust_file, "missing: the project key is not pinned, so no signature can be "
                             "trusted; restore it from version control (it is meant to be committed)")
            return
        self.trusted = dict(self.trust.trusted)
        for line, message in self.trust.problems:
            self.problem(layout.trust_file, message, line=line)
        root_line = self.trust.line_of(self.trust.root or "")
        private = layout.keys_dir / PRIVATE_KEY_FILE
        public = layout.keys_dir / PUBLIC_KEY_FILE
        if not layout.keys_dir.is_dir():
            if anything_signed:
                self.problem(layout.trust_file, f"pins key {(self.trust.root or '?')[:16]}…, but "
                             f"{self.rel(layout.keys_dir)}/ is missing (deleted?): no further record can be signed; "
                             "restore it from your backup", line=root_line)
            return
        if not private.exists():
            self.problem(layout.trust_file, f"pins key {(self.trust.root or '?')[:16]}…, but {self.rel(private)} "
                         "is missing (deleted?); restore it from your backup", line=root_line)
        raw = load_public_key(layout.keys_dir)
        if raw is None:
            if private.exists() or public.exists():
                self.problem(public if public.exists() else private, "the project key cannot be read", line=1)
        elif key_id_of(raw) not in self.trusted and key_id_of(raw) not in self.trust.unreviewed:
            self.problem(public if public.exists() else private,
                         f"holds key {key_id_of(raw)[:16]}… which {self.rel(layout.trust_file)} does not pin: the "
                         "project key was replaced", line=1)
        if private.exists() and public.exists():
            try:
                if load_private_key(private).public_raw != raw:
                    self.problem(public, "does not belong to the private key beside it (one of them was replaced)",
                                 line=1)
            except (ValueError, TypeError):
                self.problem(private, "is not an Ed25519 private key in PEM", line=1)

    def keys_for_plan(self, plan_id: str) -> dict[str, bytes]:
        pinned = self.plan_pins.get(plan_id)
        if pinned is None or self.trust is None:
            return self.trusted
        allowed = self.trust.descendants(pinned)
        return {k: v for k, v in self.trusted.items() if k in allowed}

    # -- chained logs ----------------------------------------------------------------------
    def check_log(self, path: Path, keys: dict[str, bytes]) -> list[tuple[int, dict[str, Any]]]:
        """Chain, signed head; returns the log's lines."""
        self.report.logs_checked += 1
        broken = verify_chain(path)
        if broken is not None:
            self.problem(path, broken.reason, line=broken.line)
        lines = _log_lines(path)
        count = len(lines)
        head_file = head_path(path)
        document = read_head(path)
        if document is None:
            if count:
                self.problem(head_file, f"missing: nothing signed says how long {path.name} was, so cutting lines "
                             f"off its end cannot be ruled out ({path.name} has {count} lines)", line=None)
            return lines
        try:
            head = open_json(document, keys, HEAD_PAYLOAD_TYPE)
        except EnvelopeError as exc:
            self.problem(head_file, str(exc), line=_json_line(head_file.read_text(errors="replace"), "signatures"))
            return lines
        covered = int(head.get("count", 0))
        if covered > count:
            last = lines[-1][1].get("event") or lines[-1][1].get("type") if lines else None
            self.problem(path, f"truncated: its signed head ({head_file.name}) covers {covered} lines (last seq "
                         f"{head.get('last_seq')}), the file ends after line {count}"
                         + (f" ({last})" if last else "") + f": {covered - count} line(s) were cut off",
                         line=count + 1)
        elif covered and lines[covered - 1][1].get("digest") != head.get("last_digest"):
            self.problem(path, f"line {covered} is not the line its signed head ({head_file.name}) names: the log "
                         "was rewritten", line=covered)
        elif covered < count:
            self.report.notes.append(f"{self.rel(path)}: lines {covered + 1}–{count} were written after its newest "
                                     "signed head (the writer stopped before signing it)")
        return lines

    # -- journals --------------------------------------------------------------------------
    def check_journal(self, path: Path) -> None:
        plan_id = path.parent.name
        lines = _log_lines(path)
        if lines and lines[0][1].get("type") == "plan.created":
            pinned = (lines[0][1].get("data") or {}).get("key_fingerprint")
            if isinstance(pinned, str) and pinned:
                self.plan_pins[plan_id] = pinned
                if pinned not in self.trusted:
                    self.problem(path, f"plan.created pins key {pinned[:16]}… which "
                                 f"{self.rel(self.layout.trust_file)} does not trust", line=lines[0][0])
        self.check_log(path, self.keys_for_plan(plan_id))
        for number, rec in lines:
            data = rec.get("data") or {}
            named = data.get("provenance_path") if rec.get("type") == "step.verified" else None
            if isinstance(named, str) and named and not self._record_exists(self.layout.root / named):
                self.problem(path, f"step.verified of {data.get('step_id')} names {named}, which no longer exists",
                             line=number, step=str(data.get("step_id")))
        self.check_checkpoint(plan_id, path)

    @staticmethod
    def _record_exists(path: Path) -> bool:
        """The record, or the same record archived when its step was repaired (``failed/attempts/<n>/``)."""
        if path.exists():
            return True
        fork_dir = path.parent.parent
        return any(fork_dir.glob(f"failed/attempts/*/{path.name}"))

    def check_checkpoint(self, plan_id: str, journal_path: Path) -> None:
        checkpoint = self.layout.checkpoint_file(plan_id)
        if not checkpoint.exists():
            return
        why = check_against_replay(journal_path, plan_id, checkpoint)
        if why is not None:
            self.problem(checkpoint, why, line=1)

    # -- forks -----------------------------------------------------------------------------
    def check_fork(self, fork_dir: Path) -> None:
        plan_id = fork_dir.parent.name.removeprefix("plan_")
        fork_id = fork_dir.name.removeprefix("fork_")
        keys = self.keys_for_plan(plan_id)
        audit_path = fork_dir / "audit.log"
        audit = self.check_log(audit_path, keys) if audit_path.exists() else []
        by_seq = {rec.get("seq"): (number, rec) for number, rec in audit}

        records: dict[str, tuple[Path, dict[str, Any]]] = {}
        for path in provenance_files(fork_dir):
            self.report.records_checked += 1
            step = path.name.removesuffix(".provenance.json")
            text = path.read_text(encoding="utf-8", errors="replace")
            try:
                envelope = json.loads(text)
            except ValueError as exc:
                self.problem(path, "not valid JSON", line=getattr(exc, "lineno", 1), step=step)
                continue
            digest = record_digest(envelope) if isinstance(envelope, dict) else ""
            try:
                statement = open_statement(envelope, keys)
            except EnvelopeError as exc:
                where = "signatures" if "sign" in str(exc) or exc.key_ids else "payload"
                message = str(exc)
                if exc.key_ids and any(k in self.trusted for k in exc.key_ids) and plan_id in self.plan_pins:
                    message += f" (the plan's journal pins key {self.plan_pins[plan_id][:16]}…)"
                self.problem(path, message, line=_json_line(text, f'"{where}"'), step=step)
                continue
            predicate: dict[str, Any] = statement["predicate"]
            records[digest] = (path, predicate)
            payload_line = _json_line(text, '"payload"')
            if predicate.get("task_id") != step:
                self.problem(path, f"signed for {predicate.get('task_id')!r}, stored as {step}", payload_line, step)
            if predicate.get("plan_id") != plan_id or predicate.get("fork_id") != fork_id:
                self.problem(path, f"signed for plan {predicate.get('plan_id')!r} fork {predicate.get('fork_id')!r}, "
                             f"stored under plan {plan_id!r} fork {fork_id!r}", payload_line, step)
            try:
                expected_subjects = subjects_of(predicate)
            except (KeyError, TypeError):
                expected_subjects = None
            if expected_subjects is not None and statement.get("subject") != expected_subjects:
                self.problem(path, "the Statement's subjects are not the predicate's products", payload_line, step)
            anchor = predicate.get("audit_anchor")
            if isinstance(anchor, dict):
                hit = by_seq.get(anchor.get("seq"))
                if hit is None or hit[1].get("digest") != anchor.get("digest"):
                    self.problem(audit_path, f"the line (seq {anchor.get('seq')}) that {self.rel(path)} is anchored "
                                 "to is missing or changed: the audit log was truncated or edited",
                                 line=hit[0] if hit else len(audit) + 1, step=step)

        # The chain of records.
        successors: dict[str, list[str]] = {}
        starts: list[str] = []
        for digest, (path, predicate) in sorted(records.items(), key=lambda kv: str(kv[1][0])):
            prev = predicate.get("previous_digest")
            if prev is None:
                starts.append(digest)
            elif prev not in records:
                self.problem(path, "previous_digest names no record of this fork: the previous record was edited "
                             "or deleted", line=1, step=str(predicate.get("task_id")))
            else:
                successors.setdefault(prev, []).append(digest)
        if records and len(starts) != 1:
            self.problem(fork_dir, f"{len(starts)} records start the provenance chain; exactly one should")
        for nexts in successors.values():
            if len(nexts) > 1:
                listed = ", ".join(self.rel(records[d][0]) for d in nexts)
                self.report.problems.append(Problem(listed, "several records claim the same predecessor "
                                                    "(chain forked)", line=1))
        head = chain_head(fork_dir)
        head_file = fork_dir / HEAD_FILE
        if records or head:
            if head is None:
                self.problem(head_file, "missing: the newest record is unknown")
            elif head.get("digest") not in records:
                self.problem(head_file, f"names {head.get('path')} ({head.get('task_id')}) which is missing or "
                             "changed: the newest provenance record was edited or deleted", line=1,
                             step=head.get("task_id"))
            elif successors.get(str(head.get("digest"))):
                self.problem(head_file, "is not the newest record of the chain", line=1)
            elif int(head.get("count", 0)) != len(records):
                self.problem(head_file, f"counts {head.get('count')} records but {len(records)} exist", line=1)

        # Every verdict in the audit log names a record that still exists unchanged.
        for number, rec in audit:
            named = rec.get("provenance_digest")
            if rec.get("event") in VERDICT_EVENTS and named and named not in records:
                self.problem(audit_path, f"{rec.get('event')} of {rec.get('task_id')} names provenance "
                             f"{rec.get('provenance')} which is missing or changed", line=number,
                             step=rec.get("task_id"))


def _anything_signed(layout: ProjectLayout) -> bool:
    if layout.handoff_dir.is_dir() and any(layout.handoff_dir.glob("plan_*/fork_*/audit.log")):
        return True
    return layout.plans_dir.is_dir() and any(layout.plans_dir.glob("*/journal.jsonl"))


def verify_project(layout: ProjectLayout) -> VerifyReport:
    """Check the key pin, every fork's audit log and provenance chain, and every plan journal."""
    report = VerifyReport()
    checker = _Verifier(layout, report)
    checker.check_trust(_anything_signed(layout))
    if layout.plans_dir.is_dir():
        for journal in sorted(layout.plans_dir.glob("*/journal.jsonl")):
            checker.check_journal(journal)
    if layout.handoff_dir.is_dir():
        for fork_dir in sorted(layout.handoff_dir.glob("plan_*/fork_*")):
            if fork_dir.is_dir():
                checker.check_fork(fork_dir)
    return report
