"""The language server leaves when its client does, and a build it was running is halted, not lost.

Each test starts a real ``conductor lsp`` over stdio (raw JSON-RPC, so the test controls the
pipes and the parent process), starts a real ``conductor.build`` in handoff mode (it waits for
an agent to claim the planning task), then takes the client away in one of the three ways an
editor does: ``shutdown`` + ``exit``, end of input, or the ``initialize.processId`` process
dying. The server must be gone within 2 s, the plan's journal must end with ``plan.halted``,
and ``conductor resume`` with a reference agent must then finish the plan.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
EXIT_WITHIN = 2.0
AGENT_SCRIPT = """\
import json, os, sys
task = json.load(open(os.environ["CONDUCTOR_TASK_FILE"]))
if task.get("kind") == "plan":
    print(json.dumps({"goal": "g", "strategy": "default", "steps": [{"id": "step_001", "title": "Add a",
          "instruction": "Create a.py.", "allowed_files": ["a.py"], "estimated_confidence": 0.95}]}))
else:
    open(os.path.join(os.environ["CONDUCTOR_WORKSPACE"], "a.py"), "w").write("A = 1\\n")
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "server"), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update({"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    return env


def _project(root: Path) -> Path:
    require_tool("git")
    (root / ".conductor").mkdir(parents=True)
    (root / ".conductor" / "policy.yaml").write_text("behavior:\n  approval_below: 0.1\n")
    (root / ".conductor" / "config.yaml").write_text("mode: handoff\nforks: 1\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=_env())
    subprocess.run(["git", "commit", "-q", "-m", "start"], cwd=root, check=True, env=_env())
    return root


class RawClient:
    """Just enough JSON-RPC over the server's stdio to drive its life cycle."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.next_id = 0

    def send(self, method: str, params: Any = None, request: bool = True) -> int | None:
        assert self.proc.stdin is not None
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        msg_id = None
        if request:
            self.next_id += 1
            msg_id = message["id"] = self.next_id
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()
        return msg_id

    def read(self) -> dict[str, Any]:
        out: BinaryIO = self.proc.stdout  # type: ignore[assignment]
        length = 0
        while True:
            line = out.readline()
            if not line:
                raise EOFError("server closed its output")
            if line in (b"\r\n", b"\n"):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(out.read(length))

    def request(self, method: str, params: Any = None, timeout: float = 30) -> Any:
        msg_id = self.send(method, params)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            message = self.read()
            if message.get("id") == msg_id and "method" not in message:
                assert "error" not in message, message
                return message.get("result")
            if "id" in message and "method" in message:  # a request from the server: answer it
                self.answer(message)
        raise TimeoutError(method)

    def answer(self, message: dict[str, Any]) -> None:
        result: Any = None
        if message["method"] == "workspace/configuration":
            result = [{} for _ in message["params"]["items"]]
        body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()


def _start_server(project: Path, process_id: int | None) -> tuple[subprocess.Popen[bytes], RawClient, str]:
    proc = subprocess.Popen([sys.executable, "-m", "conductor", "lsp"], cwd=project, env=_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    client = RawClient(proc)
    client.request("initialize", {"processId": process_id, "rootUri": project.as_uri(),
                                  "capabilities": {"window": {"workDoneProgress": False}}})
    client.send("initialized", {}, request=False)
    started = client.request("workspace/executeCommand",
                             {"command": "conductor.build", "arguments": [{"goal": "Add a"}]})
    assert started["status"] == "running", started
    plan_id = started["plan_id"]
    journal = project / ".conductor" / "plans" / plan_id / "journal.jsonl"
    end = time.monotonic() + 30
    while time.monotonic() < end and not list((project / ".conductor" / "handoff").rglob("step_000.task.json")):
        time.sleep(0.1)
    assert journal.exists(), "the build did not start"
    return proc, client, plan_id


def _gone_within(pid: int, seconds: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds + 3:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return time.monotonic() - start
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().split(") ")[1].startswith("Z"):  # exited, not yet reaped by its parent
                return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"conductor lsp (pid {pid}) still runs {seconds + 3:.0f} s after its client left")


def _journal_types(project: Path, plan_id: str) -> list[str]:
    journal = project / ".conductor" / "plans" / plan_id / "journal.jsonl"
    return [json.loads(line)["type"] for line in journal.read_text().splitlines() if line.strip()]


def _resume_finishes(project: Path, plan_id: str, tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text(AGENT_SCRIPT)
    agent = subprocess.Popen([sys.executable, "-m", "conductor", "agent", "--command", f"{sys.executable} {script}",
                              "--idle-exit", "30"], cwd=project, env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = subprocess.run([sys.executable, "-m", "conductor", "resume", "--plan", plan_id], cwd=project,
                              env=_env(), capture_output=True, text=True, timeout=120)
    finally:
        agent.terminate()
        agent.wait(10)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "a.py").read_text() == "A = 1\n"
    assert _journal_types(project, plan_id)[-1] == "plan.finished"


def test_shutdown_then_exit_during_a_build_halts_it_and_leaves(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    proc, client, plan_id = _start_server(project, os.getpid())
    client.request("shutdown")
    client.send("exit", request=False)
    took = _gone_within(proc.pid, EXIT_WITHIN)
    assert took < EXIT_WITHIN, f"took {took:.2f} s"
    assert proc.wait(5) == 0
    assert _journal_types(project, plan_id)[-1] == "plan.halted"
    _resume_finishes(project, plan_id, tmp_path)


def test_end_of_input_during_a_build_halts_it_and_leaves(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    proc, _client, plan_id = _start_server(project, os.getpid())
    assert proc.stdin is not None
    proc.stdin.close()
    took = _gone_within(proc.pid, EXIT_WITHIN)
    assert took < EXIT_WITHIN, f"took {took:.2f} s"
    assert _journal_types(project, plan_id)[-1] == "plan.halted"


def test_exit_without_shutdown_leaves_with_code_1(tmp_path: Path) -> None:
    project = _project(tmp_path / "proj")
    proc, client, plan_id = _start_server(project, os.getpid())
    client.send("exit", request=False)
    assert _gone_within(proc.pid, EXIT_WITHIN) < EXIT_WITHIN
    assert proc.wait(5) == 1
    assert _journal_types(project, plan_id)[-1] == "plan.halted"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_the_client_process_dying_ends_the_server(tmp_path: Path) -> None:
    """The editor is killed: nobody closes our stdin or sends exit; ``processId`` tells us."""
    project = _project(tmp_path / "proj")
    editor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        proc, _client, plan_id = _start_server(project, editor.pid)
        editor.send_signal(signal.SIGKILL)
        editor.wait(5)
        took = _gone_within(proc.pid, EXIT_WITHIN)
        assert took < EXIT_WITHIN, f"took {took:.2f} s"
        assert _journal_types(project, plan_id)[-1] == "plan.halted"
    finally:
        if editor.poll() is None:
            editor.kill()


def test_sigterm_during_a_build_halts_it_and_leaves(tmp_path: Path) -> None:
    """An editor that gives up waiting for ``shutdown`` sends SIGTERM (Neovim does after 500 ms)."""
    project = _project(tmp_path / "proj")
    proc, _client, plan_id = _start_server(project, os.getpid())
    proc.send_signal(signal.SIGTERM)
    took = _gone_within(proc.pid, EXIT_WITHIN)
    assert took < EXIT_WITHIN, f"took {took:.2f} s"
    assert _journal_types(project, plan_id)[-1] == "plan.halted"
