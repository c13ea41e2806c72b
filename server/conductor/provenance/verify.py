"""Checks every signed provenance record and every hash-chained log of a project.

Why a module of its own: ``conductor verify`` is how a user (or CI) proves the record of
what agents did was not altered. It checks, per fork:

* ``audit.log`` is an unbroken chain (``storage.verify_chain``: names the first bad line);
* every ``step_NNN.provenance.json`` parses, is signed by the project key, and its
  signature matches its content;
* the records form one chain: each ``previous_digest`` names another record of the fork,
  exactly one record starts the chain, no record has two successors, and
  ``provenance.head`` names the newest record (so deleting the newest record is caught);
* each record's ``audit_anchor`` line is still in the audit log with the same digest (so
  deleting the last audit lines is caught), and each verdict line in the audit log names a
  provenance record that still exists with that digest (so deleting a record is caught).

Plan journals (``plans/*/journal.jsonl``) are chained logs too and are checked the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conductor.project.layout import ProjectLayout
from conductor.provenance.chain import HEAD_FILE, chain_head
from conductor.provenance.keys import load_public_key
from conductor.provenance.signing import record_digest, verify_signature
from conductor.storage.chainlog import verify_chain

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


def _audit_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
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


def verify_fork(layout: ProjectLayout, fork_dir: Path, trusted: bytes | None, report: VerifyReport) -> None:
    rel = layout.relative
    audit_path = fork_dir / "audit.log"
    audit: list[tuple[int, dict[str, Any]]] = []
    if audit_path.exists():
        report.logs_checked += 1
        broken = verify_chain(audit_path)
        if broken is not None:
            report.problems.append(Problem(rel(audit_path), broken.reason, line=broken.line))
        audit = _audit_records(audit_path)
    by_seq = {rec.get("seq"): (number, rec) for number, rec in audit}

    records: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in provenance_files(fork_dir):
        report.records_checked += 1
        name = rel(path)
        step = path.name.removesuffix(".provenance.json")
        try:
            record = json.loads(path.read_bytes())
        except ValueError:
            report.problems.append(Problem(name, "not valid JSON", step=step))
            continue
        if not isinstance(record, dict):
            report.problems.append(Problem(name, "not a JSON object", step=step))
            continue
        why = verify_signature(record, trusted)
        if why:
            report.problems.append(Problem(name, why, step=step))
        records[record_digest(record)] = (path, record)
        anchor = record.get("audit_anchor")
        if isinstance(anchor, dict):
            hit = by_seq.get(anchor.get("seq"))
            if hit is None or hit[1].get("digest") != anchor.get("digest"):
                report.problems.append(Problem(
                    rel(audit_path), f"the line (seq {anchor.get('seq')}) that {name} is anchored to is missing "
                    "or changed: the audit log was truncated or edited",
                    line=hit[0] if hit else None, step=step))

    # The chain of records.
    successors: dict[str, list[str]] = {}
    starts: list[str] = []
    for digest, (path, record) in sorted(records.items(), key=lambda kv: str(kv[1][0])):
        prev = record.get("previous_digest")
        if prev is None:
            starts.append(digest)
        elif prev not in records:
            report.problems.append(Problem(
                rel(path), "previous_digest names no record of this fork: the previous record was edited "
                "or deleted", step=str(record.get("task_id"))))
        else:
            successors.setdefault(prev, []).append(digest)
    if records and len(starts) != 1:
        report.problems.append(Problem(rel(fork_dir), f"{len(starts)} records start the provenance chain; "
                                       "exactly one should"))
    for nexts in successors.values():
        if len(nexts) > 1:
            names = ", ".join(rel(records[d][0]) for d in nexts)
            report.problems.append(Problem(names, "several records claim the same predecessor (chain forked)"))
    head = chain_head(fork_dir)
    if records or head:
        if head is None:
            report.problems.append(Problem(rel(fork_dir / HEAD_FILE), "missing: the newest record is unknown"))
        elif head.get("digest") not in records:
            report.problems.append(Problem(
                rel(fork_dir / HEAD_FILE), f"names {head.get('path')} ({head.get('task_id')}) which is missing "
                "or changed: the newest provenance record was edited or deleted", step=head.get("task_id")))
        elif successors.get(str(head.get("digest"))):
            report.problems.append(Problem(rel(fork_dir / HEAD_FILE), "is not the newest record of the chain"))
        elif int(head.get("count", 0)) != len(records):
            report.problems.append(Problem(rel(fork_dir / HEAD_FILE),
                                           f"counts {head.get('count')} records but {len(records)} exist"))

    # Every verdict in the audit log names a record that still exists unchanged.
    for number, rec in audit:
        named = rec.get("provenance_digest")
        if rec.get("event") in VERDICT_EVENTS and named and named not in records:
            report.problems.append(Problem(
                rel(audit_path), f"{rec.get('event')} of {rec.get('task_id')} names provenance "
                f"{rec.get('provenance')} which is missing or changed", line=number, step=rec.get("task_id")))


def verify_project(layout: ProjectLayout) -> VerifyReport:
    """Check every fork's audit log and provenance chain, and every plan journal."""
    report = VerifyReport()
    trusted = load_public_key(layout.keys_dir)
    if trusted is None:
        report.notes.append("no project key in .conductor/keys: signatures checked against the keys they carry")
    if layout.handoff_dir.is_dir():
        for fork_dir in sorted(layout.handoff_dir.glob("plan_*/fork_*")):
            if fork_dir.is_dir():
                verify_fork(layout, fork_dir, trusted, report)
    if layout.plans_dir.is_dir():
        for journal in sorted(layout.plans_dir.glob("*/journal.jsonl")):
            report.logs_checked += 1
            broken = verify_chain(journal)
            if broken is not None:
                report.problems.append(Problem(layout.relative(journal), broken.reason, line=broken.line))
    return report
