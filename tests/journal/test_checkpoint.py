"""Projection checkpoints: a checkpoint plus the events after it folds to exactly a full replay;
a checkpoint that does not match its journal or its own digest is ignored (full replay, reason
kept); one edited with a fresh digest is reported by verify's replay comparison."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from conductor.journal import Journal, PlanState, apply, project, replay
from conductor.journal import checkpoint as cp
from conductor.journal.checkpoint import load_checkpoint, state_digest
from conductor.journal.projection import check_against_replay
from conductor.project.layout import ProjectLayout
from tests.journal.test_projection import CONFIDENCE, PLAN

START = [
    ("plan.created", {"goal": "Add a greeting CLI", "mode": "handoff", "forks": 1, "config": {"forks": 1}}),
    ("policy.effective", {"policy": {"behavior": {"max_diff_lines": 200}}, "origins": {"max_diff_lines": "x:3"}}),
    ("llm.call", {"purpose": "plan", "request_digest": "d" * 64, "model": "m",
                  "usage": {"prompt_tokens": 120, "completion_tokens": 80}, "response_text": "{}"}),
    ("plan.planned", {"fork_id": "main", "strategy": "minimal", "plan": PLAN}),
    ("fork.created", {"fork_id": "main", "branch": "conductor/main", "worktree": "/w"}),
]
ROUND = [
    event
    for step in ("step_001", "step_002", "step_003")
    for event in [
        ("step.confidence", {"fork_id": "main", "step_id": step, "confidence": CONFIDENCE}),
        ("step.waiting_approval", {"fork_id": "main", "step_id": step}),
        ("step.approved", {"fork_id": "main", "step_id": step, "by": "ana"}),
        ("step.handed_off", {"fork_id": "main", "step_id": step, "task_path": "t", "checksum": "c", "attempt": 1}),
        ("step.claimed", {"fork_id": "main", "step_id": step, "executor": "agent"}),
        ("step.verified", {"fork_id": "main", "step_id": step, "verdict": "fail", "reason": "r", "evidence": {},
                           "provenance_path": "p"}),
        ("step.failed", {"fork_id": "main", "step_id": step, "cause": "timeout", "reason": "slow"}),
        ("step.repair_planned", {"fork_id": "main", "step_id": step, "attempt": 2, "instruction": "again",
                                 "allowed_files": ["hello.py"], "similar_fixes": []}),
        ("step.completed", {"fork_id": "main", "step_id": step}),
    ]
] + [("fork.scored", {"fork_id": "main", "score": 0.9, "parts": {}}), ("plan.halted", {"reason": "pause"}),
     ("plan.resumed", {})]

EVERY = 40


@pytest.fixture(autouse=True)
def small_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cp, "CHECKPOINT_EVERY", EVERY)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    layout = ProjectLayout.at(tmp_path)
    return Journal(layout.journal_file("p1"), "p1", checkpoint_path=layout.checkpoint_file("p1"))


def fill(journal: Journal, rounds: int) -> None:
    journal.append_many((START if not journal.exists() else []) + ROUND * rounds)


def as_data(state: PlanState) -> dict:
    return dataclasses.asdict(state)


def test_from_dict_round_trips_and_folds_on_identically() -> None:
    full = PlanState()
    half = PlanState()
    for n, (kind, data) in enumerate(START + ROUND * 3):
        record = {"seq": n, "type": kind, "ts": f"t{n}", "plan_id": "p1", "data": data}
        apply(full, record)
        if n == len(START) + len(ROUND):
            half = PlanState.from_dict(json.loads(json.dumps(full.to_dict())))
            assert as_data(half) == as_data(full)
        elif n > len(START) + len(ROUND):
            apply(half, record)
    assert as_data(half) == as_data(full)


def test_a_checkpoint_plus_the_rest_equals_a_full_replay(journal: Journal) -> None:
    fill(journal, 8)
    first = replay(journal)  # folds everything, writes a checkpoint at the end
    assert journal.checkpoint_path is not None and journal.checkpoint_path.exists()
    found, why = load_checkpoint(journal.checkpoint_path, journal.path, "p1")
    assert why is None and found is not None and found.seq == first.last_seq
    fill(journal, 3)
    from_checkpoint = replay(journal)
    assert as_data(from_checkpoint) == as_data(replay(journal, use_checkpoint=False))
    assert from_checkpoint.event_count == len(START) + len(ROUND) * 11
    # replay to a point before the checkpoint ignores it and is still exact
    early = len(ROUND) * 2
    assert as_data(replay(journal, to_seq=early)) == as_data(replay(journal, to_seq=early, use_checkpoint=False))
    assert check_against_replay(journal.path, "p1", journal.checkpoint_path) is None


def test_the_writer_checkpoints_its_in_memory_projection(journal: Journal) -> None:
    state = PlanState(plan_id="p1")
    written = 0
    for kind, data in START + ROUND * 6:
        apply(state, journal.append_record(kind, **data))
        written += journal.maybe_checkpoint(state)
    assert written == (len(START) + len(ROUND) * 6) // EVERY
    assert as_data(replay(journal)) == as_data(state)


def edit_checkpoint(path: Path, *, fresh_digest: bool) -> None:
    header_line, state_line, *timeline_lines = path.read_text().splitlines()
    header, state = json.loads(header_line), json.loads(state_line)
    some_step = next(iter(next(iter(state["forks"].values()))["steps"].values()))
    some_step["state"] = "skipped" if some_step["state"] != "skipped" else "completed"
    if fresh_digest:
        header["state_digest"] = state_digest(state)
    path.write_text(json.dumps(header) + "\n" + json.dumps(state, sort_keys=True, separators=(",", ":"),
                                                            ensure_ascii=False) + "\n"
                    + "".join(line + "\n" for line in timeline_lines))


def test_an_edited_checkpoint_is_ignored(journal: Journal) -> None:
    fill(journal, 8)
    truth = as_data(replay(journal))
    assert journal.checkpoint_path is not None
    edit_checkpoint(journal.checkpoint_path, fresh_digest=False)
    assert as_data(replay(journal)) == truth
    assert journal.last_rejection is not None and "state_digest" in journal.last_rejection


def test_an_edited_checkpoint_with_a_fresh_digest_is_reported(journal: Journal) -> None:
    fill(journal, 8)
    replay(journal)
    assert journal.checkpoint_path is not None
    edit_checkpoint(journal.checkpoint_path, fresh_digest=True)
    why = check_against_replay(journal.path, "p1", journal.checkpoint_path)
    assert why is not None and "does not equal a replay" in why


def test_a_checkpoint_beyond_a_cut_journal_is_ignored(journal: Journal) -> None:
    fill(journal, 8)
    replay(journal)
    lines = journal.path.read_bytes().splitlines(keepends=True)
    journal.path.write_bytes(b"".join(lines[:-5]))
    state = replay(journal)
    assert state.event_count == len(lines) - 5
    assert journal.last_rejection is not None and "no such line" in journal.last_rejection


def without_timelines(state: dict, keep: tuple[str, ...] = ()) -> dict:
    """A copy of ``state`` with the timelines of every step not in ``keep`` emptied."""
    state = copy.deepcopy(state)
    for fork in state["forks"].values():
        for step_id, step in fork["steps"].items():
            if step_id not in keep:
                step["timeline"] = []
    return state


def test_status_reads_the_summary_and_explain_one_timeline_and_both_equal_a_full_replay(journal: Journal) -> None:
    fill(journal, 8)
    replay(journal)  # writes the checkpoint
    journal.append_many(ROUND)  # and events after it
    truth = as_data(replay(journal, use_checkpoint=False))
    assert any(step["timeline"] for step in truth["forks"]["main"]["steps"].values())
    assert as_data(replay(journal, timelines=())) == without_timelines(truth)
    assert journal.last_rejection is None
    assert as_data(replay(journal, timelines=("step_002",))) == without_timelines(truth, keep=("step_002",))
    assert as_data(replay(journal)) == truth


def test_the_summary_is_read_without_the_timelines(journal: Journal) -> None:
    fill(journal, 8)
    replay(journal)
    assert journal.checkpoint_path is not None
    lines = journal.checkpoint_path.read_bytes().splitlines(keepends=True)
    assert len(lines) > 2 and b'"timeline"' not in lines[1]
    journal.checkpoint_path.write_bytes(b"".join(lines[:2]) + b"torn timelines, no newline")
    truth = as_data(replay(journal, use_checkpoint=False))
    assert as_data(replay(journal, timelines=())) == without_timelines(truth)
    assert journal.last_rejection is None  # the summary is intact and is all status reads
    assert as_data(replay(journal)) == truth  # a full reader checks the timelines and ignores them
    assert journal.last_rejection is not None and "timelines_digest" in journal.last_rejection


def test_an_edited_timeline_with_a_fresh_digest_is_reported(journal: Journal) -> None:
    fill(journal, 8)
    replay(journal)
    assert journal.checkpoint_path is not None
    header_line, state_line, *timeline_lines = journal.checkpoint_path.read_text().splitlines()
    header = json.loads(header_line)
    fork_id, step_id, timeline = json.loads(timeline_lines[0])
    timeline[-1]["type"] = "step.completed" if timeline[-1]["type"] != "step.completed" else "step.failed"
    timeline_lines[0] = json.dumps([fork_id, step_id, timeline], sort_keys=True, separators=(",", ":"))
    body = "".join(line + "\n" for line in timeline_lines).encode()
    header["timelines"][0][2] = len(timeline_lines[0]) + 1
    header["timelines_digest"] = hashlib.sha256(body).hexdigest()
    journal.checkpoint_path.write_bytes(json.dumps(header).encode() + b"\n" + state_line.encode() + b"\n" + body)
    found, why = load_checkpoint(journal.checkpoint_path, journal.path, "p1")
    assert why is None and found is not None  # self-consistent: only a replay shows the edit
    why = check_against_replay(journal.path, "p1", journal.checkpoint_path)
    assert why is not None and "does not equal a replay" in why


def test_a_timeline_index_that_lies_is_ignored(journal: Journal) -> None:
    fill(journal, 8)
    truth = as_data(replay(journal))
    assert journal.checkpoint_path is not None
    header_line, rest = journal.checkpoint_path.read_bytes().split(b"\n", 1)
    header = json.loads(header_line)
    header["timelines"][0][1], header["timelines"][1][1] = header["timelines"][1][1], header["timelines"][0][1]
    journal.checkpoint_path.write_bytes(json.dumps(header).encode() + b"\n" + rest)
    assert as_data(replay(journal)) == truth
    assert journal.last_rejection is not None and "does not match its index" in journal.last_rejection


def test_a_reader_of_the_summary_never_writes_a_checkpoint_without_timelines(journal: Journal) -> None:
    fill(journal, 8)
    replay(journal)
    journal.append_many(ROUND * 2)  # more than EVERY events past the checkpoint
    truth = as_data(replay(journal, use_checkpoint=False))
    assert as_data(replay(journal, timelines=())) == without_timelines(truth)
    assert journal.checkpoint_path is not None
    found, why = load_checkpoint(journal.checkpoint_path, journal.path, "p1")
    assert why is None and found is not None and found.seq == truth["last_seq"]
    assert as_data(PlanState.from_dict(found.state)) == truth  # the new checkpoint has every timeline


def test_replay_of_a_journal_folds_exactly_as_apply_one_event_at_a_time(journal: Journal) -> None:
    """Replay keeps each step's events raw and builds its timeline at the end (and before a
    re-plan); the state is the one ``apply`` builds event by event, timelines trimmed alike."""
    replanned = {**PLAN, "steps": [{**PLAN["steps"][0], "instruction": "second plan"}]}
    odd = [("step.forked", {"fork_id": "main", "step_id": "step_001", "variants": 2}),  # step event, no handler
           ("policy.effective", {"fork_id": "main", "step_id": "step_009", "policy": {}, "origins": {}}),
           ("plan.finished", {"outcome": "completed"})]
    journal.append_many(START + ROUND * 20 + [("plan.planned", {"fork_id": "main", "strategy": "again",
                                                                 "plan": replanned})] + ROUND * 3 + odd)
    stored = list(journal.records())
    assert as_data(replay(journal, use_checkpoint=False)) == as_data(project(stored))
    before_replan = len(START) + len(ROUND) * 20 - 1
    one_by_one = as_data(project(stored[:before_replan + 1]))
    assert len(one_by_one["forks"]["main"]["steps"]["step_001"]["timeline"]) == 100  # trimmed
    assert as_data(replay(journal, to_seq=before_replan, use_checkpoint=False)) == one_by_one
