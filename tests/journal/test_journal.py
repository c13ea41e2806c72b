"""The journal: append-only, validated at write time, hash-chained, filterable, safe under concurrency."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conductor.journal import EVENT_TYPES, Journal, JournalError, project, replay
from conductor.project.layout import ProjectLayout
from conductor.storage import verify_chain

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal.for_plan(ProjectLayout.at(tmp_path), "a1b2c3d4")


def test_it_lives_where_the_layout_says(journal: Journal, tmp_path: Path) -> None:
    assert journal.path == tmp_path.resolve() / ".conductor" / "plans" / "a1b2c3d4" / "journal.jsonl"


def test_appended_events_come_back_in_order_with_sequence_numbers(journal: Journal) -> None:
    created = journal.append("plan.created", goal="g", mode="handoff", forks=1, config={})
    claimed = journal.append("step.claimed", fork_id="main", step_id="step_001", executor="agent@host")

    assert (created.seq, claimed.seq) == (0, 1)
    assert claimed.prev == created.digest
    events = list(journal.events())
    assert [e.type for e in events] == ["plan.created", "step.claimed"]
    assert events[1].data == {"fork_id": "main", "step_id": "step_001", "executor": "agent@host"}
    assert events[1].plan_id == "a1b2c3d4" and events[1].ts.endswith("Z")
    assert len(journal) == 2


def test_events_filter_by_type_fork_step_and_position(journal: Journal) -> None:
    journal.append("plan.created", goal="g", mode="handoff", forks=2, config={})
    for fork in ("a", "b"):
        for step in ("step_001", "step_002"):
            journal.append("step.claimed", fork_id=fork, step_id=step, executor="x")
            journal.append("step.completed", fork_id=fork, step_id=step)

    assert len(list(journal.events(types="step.completed"))) == 4
    assert len(list(journal.events(types=["plan.created", "step.completed"]))) == 5
    assert [e.step_id for e in journal.events(fork_id="b", types="step.claimed")] == ["step_001", "step_002"]
    assert {e.fork_id for e in journal.events(step_id="step_002")} == {"a", "b"}
    assert [e.seq for e in journal.events(to_seq=2)] == [0, 1, 2]


def test_every_documented_event_type_is_accepted(journal: Journal) -> None:
    import re
    from pathlib import Path

    from conductor.journal.events import EVENT_FIELDS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "engine-internals.md").read_text()
    documented = set(re.findall(r"^\| `([a-z]+\.[a-z_]+)` \|", doc, flags=re.MULTILINE))
    assert documented == set(EVENT_TYPES), "docs/engine-internals.md and the journal disagree on event types"
    for event_type, fields in EVENT_FIELDS.items():
        journal.append(event_type, **dict.fromkeys(fields, "x"))
    assert len(journal) == len(EVENT_TYPES)


def test_unknown_types_missing_fields_and_non_json_payloads_are_refused_and_write_nothing(
    journal: Journal,
) -> None:
    with pytest.raises(JournalError, match=r"unknown journal event type 'step\.exploded'"):
        journal.append("step.exploded", fork_id="main", step_id="step_001")
    with pytest.raises(JournalError, match=r"step\.failed event is missing cause, reason"):
        journal.append("step.failed", fork_id="main", step_id="step_001")
    with pytest.raises(JournalError, match="not plain JSON"):
        journal.append("plan.halted", reason=object())
    with pytest.raises(JournalError):
        journal.append_many([("plan.halted", {"reason": "ok"}), ("plan.finished", {})])
    assert not journal.path.exists()


def test_a_batch_append_builds_the_same_valid_chain(journal: Journal) -> None:
    journal.append("plan.created", goal="g", mode="handoff", forks=1, config={})
    count = journal.append_many(
        [("step.claimed", {"fork_id": "main", "step_id": f"step_{i:03d}", "executor": "x"}) for i in range(1, 51)]
    )
    journal.append("plan.finished", outcome="completed")

    assert count == 50
    assert [e.seq for e in journal.events()] == list(range(52))
    assert journal.verify() is None


def test_an_edited_line_breaks_the_chain_at_that_line(journal: Journal) -> None:
    journal.append("plan.created", goal="g", mode="handoff", forks=1, config={})
    journal.append("step.failed", fork_id="main", step_id="step_001", cause="timeout", reason="no result")
    journal.append("plan.finished", outcome="failed")
    lines = journal.path.read_text().splitlines(keepends=True)
    record = json.loads(lines[1])
    record["data"]["cause"] = "none"  # someone hides the failure
    lines[1] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    journal.path.write_text("".join(lines))

    broken = verify_chain(journal.path)
    assert broken is not None and broken.line == 2 and "edited" in broken.reason
    assert journal.verify() == broken


def test_a_deleted_line_breaks_the_chain(journal: Journal) -> None:
    for _ in range(3):
        journal.append("plan.resumed")
    lines = journal.path.read_text().splitlines(keepends=True)
    journal.path.write_text(lines[0] + lines[2])
    broken = journal.verify()
    assert broken is not None and broken.line == 2


def test_processes_appending_at_once_keep_one_unbroken_chain(journal: Journal) -> None:
    writer = (
        "import sys\n"
        "from conductor.journal import Journal\n"
        "j = Journal(sys.argv[1], 'a1b2c3d4')\n"
        "for i in range(100):\n"
        "    j.append('step.claimed', fork_id=sys.argv[2], step_id=f'step_{i:03d}', executor=sys.argv[2])\n"
        "    if i % 10 == 0:\n"
        "        j.append_many([('plan.resumed', {})] * 3)\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", writer, str(journal.path), f"w{n}"], cwd=REPO) for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in processes] == [0, 0, 0, 0]
    assert journal.verify() is None
    assert len(journal) == 4 * (100 + 30)


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_append(journal: Journal) -> None:
    journal.append("plan.resumed")
    with journal.path.open("ab") as fh:
        fh.write(b'{"seq": 1, "type": "plan.hal')  # a writer killed in the middle of a write
    assert [e.type for e in journal.events()] == ["plan.resumed"]
    journal.append("plan.halted", reason="again")
    assert [e.seq for e in journal.events()] == [0, 1]
    assert journal.verify() is None


def test_a_damaged_complete_line_is_reported_with_its_line_number(journal: Journal) -> None:
    journal.append("plan.resumed")
    journal.append("plan.resumed")
    lines = journal.path.read_bytes().splitlines(keepends=True)
    journal.path.write_bytes(lines[0] + b"garbage\n" + lines[1])
    with pytest.raises(JournalError, match=r"journal\.jsonl:2: not a journal event"):
        list(journal.events())


def test_replay_reads_what_records_reads_and_names_the_same_damaged_line(journal: Journal) -> None:
    journal.append("plan.created", goal="g", mode="handoff", forks=1, config={"huge": 2**80})  # wider than orjson
    journal.append("plan.resumed")
    lines = journal.path.read_bytes().splitlines(keepends=True)
    journal.path.write_bytes(lines[0] + b"\n   \n" + lines[1])  # blank lines are skipped by both
    state = replay(journal, use_checkpoint=False)
    assert state == project(journal.records()) and state.config == {"huge": 2**80} and state.event_count == 2
    journal.path.write_bytes(lines[0] + b"garbage\n" + lines[1])
    with pytest.raises(JournalError, match=r"journal\.jsonl:2: not a journal event"):
        replay(journal, use_checkpoint=False)
