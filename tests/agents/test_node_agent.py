"""The contract is language-neutral: a Node.js agent written from docs/handoff.md alone completes a
real `conductor build` (planning task included) by files, and computes every task checksum exactly
as Python does (RFC 8785 through the npm `canonicalize` package)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import jsonschema
import pytest

from conductor.contract.checksum import canonical_json, legacy_canonical_json, task_checksum
from conductor.contract.provenance import decode_predicate
from conductor.contract.task import Confidence, ConfidenceFactor
from conductor.handoff.tasks import TaskSpec, build_task
from conductor.policy import merge
from tests.agents.node_support import AGENT, CHECKSUM, ensure_node_agent
from tests.engine.support import conductor, conductor_env

GOAL = "Create a greeting module with a test and a command line"
VERIFICATION = """
verification:
  - name: greeting works
    run: "node -e \\"const {greet} = require('./greet.js'); process.exit(greet('Ada') === 'Hello, Ada!' ? 0 : 1)\\""
    timeout_seconds: 60
  - name: unit tests
    run: "test ! -f test/greet.test.js || node --test test/greet.test.js"
    timeout_seconds: 60
"""


def node_checksums(node: str, tasks: list[dict[str, Any]]) -> list[str]:
    """The checksums the Node agent computes for ``tasks``, given as the JSON text Python writes."""
    text = json.dumps(tasks, ensure_ascii=False, indent=2)
    proc = subprocess.run([node, str(CHECKSUM)], input=text.encode("utf-8"), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return list(json.loads(proc.stdout))


def local_schema(document: dict[str, Any], root: Path, kind: str) -> dict[str, Any]:
    """The schema an agent finds offline: the task's ``$schema`` file, and its siblings for the other kinds."""
    folder = root / ".conductor" / "schemas"
    if kind == "task":
        uri = urlparse(document["$schema"])
        assert uri.scheme == "file" and Path(unquote(uri.path)) == folder / "task.schema.json"
    return dict(json.loads((folder / f"{kind}.schema.json").read_text()))


def test_a_node_agent_written_from_the_docs_completes_a_real_build(tmp_path: Path) -> None:
    node = ensure_node_agent()
    root = tmp_path / "proj"
    root.mkdir()
    env = conductor_env(None, key=None)  # no model: planning itself is handed off
    init = conductor("init", ".", cwd=root, env=env)
    assert init.returncode == 0, init.stderr
    with (root / ".conductor" / "policy.yaml").open("a") as fh:
        fh.write(VERIFICATION)
    agent = subprocess.Popen([node, str(AGENT), str(root), "--idle-exit", "120", "--name", "node-reference"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        build = conductor("build", GOAL, "--json", cwd=root, env=env, timeout=300)
    finally:
        agent.kill()
        out, err = agent.communicate(timeout=30)
    assert build.returncode == 0, build.stdout + build.stderr + err
    summary = json.loads(build.stdout)
    assert summary["outcome"] == "completed" and summary["merged"], summary

    # the agent read the verdict of each of its attempts from the task's verdict_file: all passed, first time
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(r["task_id"], r["kind"], r["attempt"], r["verdict"]) for r in reports] == [
        ("step_000", "plan", 1, "pass"), ("step_001", "step", 1, "pass"),
        ("step_002", "step", 1, "pass"), ("step_003", "step", 1, "pass")], err
    assert not [line for line in err.splitlines() if line.strip()], err

    (fork,) = (root / ".conductor" / "handoff").glob("plan_*/fork_main")
    for step in ("step_000", "step_001", "step_002", "step_003"):
        task = json.loads((fork / "completed" / f"{step}.task.json").read_text())
        result = json.loads((fork / "completed" / f"{step}.result.json").read_text())
        verdict = json.loads(Path(task["verdict_file"]).read_text())
        assert Path(task["workspace"]).is_absolute() and Path(task["verdict_file"]).is_absolute()
        assert result["nonce"] == task["nonce"] == verdict["nonce"] and verdict["verdict"] == "pass", verdict
        for document, kind in ((task, "task"), (result, "result"), (verdict, "verdict")):
            jsonschema.validate(document, local_schema(task, root, kind))  # the project's offline copies
        if step == "step_000":
            jsonschema.validate(result["plan"], local_schema(task, root, "plan"))
        else:
            assert [c["timeout_seconds"] for c in task["verification"]] == [60, 60]
        predicate = decode_predicate(json.loads((fork / "completed" / f"{step}.provenance.json").read_text()))
        assert predicate["executor"] == "node-reference" and predicate["verdict"] == "pass"

    # the merged result works, and every record verifies
    assert (root / "greet.js").is_file() and (root / "test" / "greet.test.js").is_file()
    assert subprocess.run([node, "cli.js", "Ada"], cwd=root, capture_output=True, text=True).stdout == "Hello, Ada!\n"
    verify = conductor("verify", cwd=root, env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


# RFC 8785, section 3.2.2: input and the exact canonical bytes the standard gives for it.
RFC_INPUT = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], '
             '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}')
RFC_CANONICAL = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
                 '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')


def hostile_tasks() -> list[dict[str, Any]]:
    """Task documents whose canonical form differs from a naive JSON printer's."""
    real = build_task(
        TaskSpec("p1", "main", "Écris « bonjour » 👋 — e\u0301 ≠ é", ["greet.py"],
                 confidence=Confidence(score=1.0, level="high", factors=[
                     ConfidenceFactor(name="history", value=0.1, weight=1.0, detail="1 of 10 — 🙂")])),
        merge([]), "/home/me/proj/.conductor/attempts/p1/main/step_001.1", "step_001", "2026-01-01T00:00:00Z",
        attempt=1, nonce="0" * 32, verdict_file="/v/step_001.1.verdict.json",
        schema_uri="file:///home/me/proj/.conductor/schemas/task.schema.json").body()
    floats = {"contract_version": "2.0", "score": 1.0, "big": 1e21, "tenth": 0.1, "sum": 0.1 + 0.2, "third": 1 / 3,
              "negative_zero": -0.0, "tiny": 5e-324, "small": 1e-7, "max": 1.7976931348623157e308,
              "hundred": 100.0, "large_int": 2**53 - 1, "ints": [0, -1, 10**15], "checksum": "sha256:" + "0" * 64}
    unicode = {"contract_version": "2.0", "\U0001f600": "astral key (UTF-16 D83D DE00)", "\uff61": "BMP key above it",
               "é": "precomposed", "e\u0301": "combining", "\u00c5": 1, "A\u030a": 2, "": "empty key",
               "controls": "\u0000\u0007\b\t\n\f\r\u001f\u007f\u2028\u2029\"\\/",
               "astral": "𝄞 𠜎 🏳️‍🌈", "checksum": "sha256:" + "0" * 64}
    nested = {"contract_version": "2.0", "a": {"z": [{"y": {"x": [1, 2.5, {"w": None, "v": True, "u": False}]}}],
                                             "b": {}, "c": [], "d": [[[]]]}, "B": {"a": {"b": {"c": {"d": 1.0}}}}}
    return [real, floats, unicode, nested]


def test_python_and_javascript_compute_the_same_checksums(tmp_path: Path) -> None:
    node = ensure_node_agent()
    assert canonical_json(json.loads(RFC_INPUT)).decode("utf-8") == RFC_CANONICAL  # Python's side, by the RFC
    tasks = hostile_tasks()
    expected = [task_checksum(t) for t in tasks]
    got = node_checksums(node, [*tasks, json.loads(RFC_INPUT)])
    assert got[:-1] == expected
    assert got[-1] == "sha256:" + hashlib.sha256(RFC_CANONICAL.encode("utf-8")).hexdigest()  # JS's side, by the RFC
    # the real task's own checksum field is the one both compute
    assert tasks[0]["checksum"] == expected[0] == got[0]
    # the test can fail: Python's json.dumps (contract 1.0) disagrees with JCS on exactly these documents
    legacy = ["sha256:" + hashlib.sha256(legacy_canonical_json({k: v for k, v in t.items() if k != "checksum"}))
              .hexdigest() for t in tasks]
    assert all(old != new for old, new in zip(legacy, expected, strict=True))


def test_the_node_agent_refuses_a_task_whose_checksum_does_not_match(tmp_path: Path) -> None:
    """Docs step 3: a task that does not match its checksum gets a `failed` result and no work."""
    node = ensure_node_agent()
    fork = tmp_path / ".conductor" / "handoff" / "plan_p1" / "fork_main"
    for state in ("pending", "in_progress"):
        (fork / state).mkdir(parents=True)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    body = build_task(TaskSpec("p1", "main", "Create greet.js", ["greet.js"]), merge([]), str(workspace),
                      "step_001", "2026-01-01T00:00:00Z", attempt=1, nonce="ab" * 16,
                      verdict_file=str(fork / "verdicts" / "step_001.1.verdict.json")).body()
    body["allowed_files"] = ["greet.js", "anything_else.js"]  # edited after Conductor wrote it
    (fork / "pending" / "step_001.task.json").write_text(json.dumps(body, indent=2))
    agent = subprocess.Popen([node, str(AGENT), str(tmp_path), "--idle-exit", "30"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        result_path = fork / "in_progress" / "step_001.result.json"
        for _ in range(300):
            if result_path.exists():
                break
            subprocess.run(["sleep", "0.1"])
        result = json.loads(result_path.read_text())
    finally:
        agent.kill()
        agent.communicate(timeout=30)
    assert result["status"] == "failed" and "checksum" in result["error"] and result["nonce"] == "ab" * 16
    assert not (workspace / "greet.js").exists()
    assert not list(tmp_path.rglob(".step_001.result.json*")), "the temporary file was renamed into place"


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip("POSIX only")
