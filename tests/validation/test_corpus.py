"""`conductor validate` on the corpus of deliberately broken files: every one is reported at
its exact line and column with its stable code, and the valid files report nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conductor.validation import validate_file

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
BROKEN = CORPUS / "broken"

# (file under corpus/broken, code, (start line, start column, end line, end column)), 1-based like the CLI.
EXPECTED = [
    ("config/bad_mode/.conductor/config.yaml", "config/enum", (1, 7, 1, 16)),
    ("config/forks_zero/.conductor/config.yaml", "config/range", (1, 8, 1, 9)),
    ("config/invalid_url/.conductor/config.yaml", "config/invalid-url", (2, 13, 2, 30)),
    ("config/secret_in_file/.conductor/config.yaml", "config/secret-in-file", (4, 3, 4, 10)),
    ("config/unknown_key/.conductor/config.yaml", "config/unknown-key", (2, 1, 2, 5)),
    ("plan/dependency_cycle/broken.plan.json", "plan/dependency-cycle", (11, 7, 11, 19)),
    ("plan/duplicate_step/broken.plan.json", "plan/duplicate-step", (13, 13, 13, 23)),
    ("plan/no_steps/broken.plan.json", "plan/too-short", (3, 12, 3, 14)),
    ("plan/step_policy_invalid_glob/broken.plan.json", "plan/invalid-glob", (14, 13, 14, 18)),
    ("plan/unknown_dependency/broken.plan.json", "plan/unknown-dependency", (20, 9, 20, 19)),
    ("policy/alias_bomb/.conductor/policy.yaml", "yaml/alias-expansion", (1, 1, 1, 62)),
    ("policy/binary/.conductor/policy.yaml", "file/binary", (3, 1, 3, 2)),
    ("policy/comments_only/.conductor/policy.yaml", "file/empty", (1, 1, 1, 1)),
    ("policy/contradiction_duplicate_command/.conductor/policy.yaml", "policy/contradiction", (4, 11, 4, 16)),
    ("policy/contradiction_protect_and_unprotect/.conductor/policy.yaml", "policy/contradiction", (3, 15, 3, 23)),
    ("policy/contradiction_thresholds/.conductor/policy.yaml", "policy/contradiction", (3, 18, 3, 21)),
    ("policy/deep_nesting/.conductor/policy.yaml", "yaml/too-deep", (1, 84, 1, 85)),
    ("policy/duplicate_key/.conductor/policy.yaml", "yaml/duplicate-key", (4, 1, 4, 9)),
    ("policy/duplicate_nested_key/.conductor/policy.yaml", "yaml/duplicate-key", (4, 3, 4, 17)),
    ("policy/empty/.conductor/policy.yaml", "file/empty", (1, 1, 1, 1)),
    ("policy/invalid_glob_partial_double_star/.conductor/policy.yaml", "policy/invalid-glob", (3, 7, 3, 20)),
    ("policy/invalid_glob_unclosed_bracket/.conductor/policy.yaml", "policy/invalid-glob", (4, 7, 4, 20)),
    ("policy/missing_required_command_run/.conductor/policy.yaml", "policy/missing-key", (2, 5, 2, 16)),
    ("policy/multiple_documents/.conductor/policy.yaml", "yaml/multiple-documents", (4, 1, 4, 10)),
    ("policy/not_mapping_list/.conductor/policy.yaml", "file/not-mapping", (1, 1, 1, 21)),
    ("policy/not_mapping_scalar/.conductor/policy.yaml", "file/not-mapping", (1, 1, 1, 16)),
    ("policy/range_negative_limit/.conductor/policy.yaml", "policy/range", (2, 20, 2, 22)),
    ("policy/range_threshold_above_one/.conductor/policy.yaml", "policy/range", (2, 19, 2, 22)),
    ("policy/syntax_bad_indent/.conductor/policy.yaml", "yaml/syntax", (3, 19, 3, 20)),
    ("policy/syntax_unclosed_flow/.conductor/policy.yaml", "yaml/syntax", (1, 21, 1, 22)),  # at the open `[`
    ("policy/tab_indentation/.conductor/policy.yaml", "yaml/syntax", (2, 1, 2, 2)),
    ("policy/type_string_for_int/.conductor/policy.yaml", "policy/type", (2, 19, 2, 33)),
    ("policy/type_string_for_list/.conductor/policy.yaml", "policy/type", (1, 21, 1, 37)),
    ("policy/unknown_key_after_emoji/.conductor/policy.yaml", "policy/unknown-key", (2, 32, 2, 45)),
    ("policy/unknown_key_near_miss/.conductor/policy.yaml", "policy/unknown-key", (2, 3, 2, 20)),
    ("policy/unknown_limit_in_allow_loosen/.conductor/policy.yaml", "policy/unknown-limit", (2, 34, 2, 44)),
    ("policy/unknown_top_key/.conductor/policy.yaml", "policy/unknown-key", (2, 1, 2, 10)),
    ("provenance/missing_payload_type/step_001.provenance.json", "provenance/missing-key", (1, 1, 1, 2)),
    ("result/bad_status/step_001.result.json", "result/enum", (4, 13, 4, 19)),
    ("result/failed_without_error/step_001.result.json", "result/missing-error", (4, 13, 4, 21)),
    ("result/files_changed_absolute/step_001.result.json", "result/path-absolute", (6, 5, 6, 13)),
    ("result/task_mismatch_filename/step_001.result.json", "result/task-mismatch", (3, 14, 3, 24)),
    ("result/wrong_contract_version/step_001.result.json", "result/enum", (2, 23, 2, 28)),
    ("task/bad_task_id/plan_plan_1.task.json", "task/pattern", (3, 14, 3, 27)),
    ("task/checksum_tampered/step_001.task.json", "task/checksum-mismatch", (28, 15, 28, 88)),
    ("task/confidence_mismatch/step_001.task.json", "task/confidence-mismatch", (22, 14, 22, 20)),
    ("task/duplicate_key/step_001.task.json", "json/duplicate-key", (7, 3, 7, 10)),
    ("task/glob_invalid/step_001.task.json", "task/invalid-glob", (10, 5, 10, 17)),
    ("task/id_mismatch_filename/step_001.task.json", "task/id-mismatch", (3, 14, 3, 24)),
    ("task/missing_instruction/step_001.task.json", "task/missing-key", (1, 1, 1, 2)),
    ("task/not_mapping/step_001.task.json", "file/not-mapping", (1, 1, 1, 10)),
    ("task/path_absolute/step_001.task.json", "task/path-absolute", (11, 5, 11, 18)),
    ("task/path_escapes/step_001.task.json", "task/path-escapes", (10, 5, 10, 24)),
    ("task/path_parent/step_001.task.json", "task/path-parent", (10, 5, 10, 22)),
    ("task/path_protected/step_001.task.json", "task/path-protected", (11, 5, 11, 18)),
    ("task/score_out_of_range/step_001.task.json", "task/range", (21, 14, 21, 17)),
    ("task/syntax_trailing_comma/step_001.task.json", "json/syntax", (26, 18, 26, 19)),
    ("task/unknown_key_near_miss/step_001.task.json", "task/unknown-key", (28, 3, 28, 17)),
]


def kind_of(rel: str) -> str:
    return rel.split("/", 1)[0]


def test_the_corpus_has_at_least_forty_broken_files_and_each_has_an_expectation():
    on_disk = sorted(p.relative_to(BROKEN).as_posix() for p in BROKEN.rglob("*") if p.is_file())
    assert len(on_disk) >= 40
    assert on_disk == sorted(rel for rel, _, _ in EXPECTED)


@pytest.mark.parametrize(("rel", "code", "where"), EXPECTED, ids=[e[0].split("/")[1] + ":" + e[1] for e in EXPECTED])
def test_each_broken_file_is_reported_once_at_the_exact_range(rel, code, where):
    diagnostics = validate_file(BROKEN / rel, kind_of(rel))
    assert [d.code for d in diagnostics] == [code]
    r = diagnostics[0].range
    assert (r.start_line + 1, r.start_character + 1, r.end_line + 1, r.end_character + 1) == where
    assert diagnostics[0].message


def test_valid_files_report_nothing():
    files = [p for p in (CORPUS / "valid").rglob("*") if p.is_file()]
    assert len(files) >= 5
    for path in files:
        kind = "policy" if path.name == "policy.yaml" else "config" if path.name == "config.yaml" else None
        assert validate_file(path, kind) == [], path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conductor", *args], capture_output=True, text=True, timeout=120)


def test_the_cli_prints_compiler_style_lines_and_exits_1():
    proc = run_cli("validate", str(BROKEN))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    for rel, code, (line, col, _, _) in EXPECTED:
        expected = f"{BROKEN / rel}:{line}:{col}: "
        assert any(out.startswith(expected) and f" {code} " in out for out in lines), (rel, code)
    assert "58 file(s) checked" in proc.stderr or "file(s) checked" in proc.stderr


def test_the_cli_json_output_carries_ranges_codes_and_severities():
    proc = run_cli("validate", "--json", str(BROKEN / "task"))
    data = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert data["errors"] == sum(1 for rel, *_ in EXPECTED if rel.startswith("task/"))
    first = data["files"][0]["diagnostics"][0]
    assert set(first) >= {"range", "severity", "code", "message"}


def test_the_cli_exits_0_on_valid_files():
    proc = run_cli("validate", str(CORPUS / "valid"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_warnings_fail_only_with_strict():
    path = str(BROKEN / "result" / "failed_without_error")
    assert run_cli("validate", path).returncode == 0
    assert run_cli("validate", "--strict", path).returncode == 1


def test_a_file_that_is_not_a_conductor_document_is_an_error(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    proc = run_cli("validate", str(other))
    assert proc.returncode == 1
    assert "not a Conductor document" in proc.stdout
