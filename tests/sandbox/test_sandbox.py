"""The bubblewrap sandbox, specified with real ``bwrap`` processes, real files, real git, real sockets.

A sandboxed command may write its working copy (its ``.git`` included) and a private /tmp,
nothing else; it cannot read the project's signing key; with ``network: deny`` it cannot
reach even a server on loopback; and when bubblewrap cannot run, ``required`` refuses.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conductor.sandbox import Mounts, SandboxSettings, SandboxUnavailable, prepare, probe, project_mounts
from tests.conftest import require_tool

SANDBOX = SandboxSettings(mode="required", network="allow")


@pytest.fixture(autouse=True)
def _bwrap() -> None:
    require_tool("bwrap")
    assert probe().ok, probe().reason


def run(command: list[str], mounts: Mounts, settings: SandboxSettings = SANDBOX) -> subprocess.CompletedProcess[str]:
    prepared = prepare(command, mounts, settings)
    assert prepared.sandboxed
    return subprocess.run(prepared.argv, capture_output=True, text=True, timeout=60, cwd=mounts.workspace)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a signing key and an attempt working copy cloned --shared from it."""
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    (root / "app.py").write_text("print('app')\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    keys = root / ".conductor" / "keys"
    keys.mkdir(parents=True)
    (keys / "signing.key").write_text("PRIVATE KEY MATERIAL\n")
    subprocess.run(["git", "clone", "-q", "--shared", str(root), str(root / ".conductor" / "attempts" / "a1")],
                   check=True)
    return root


def attempt(project: Path) -> Path:
    return project / ".conductor" / "attempts" / "a1"


def test_writing_inside_the_working_copy_works(project: Path) -> None:
    ws = attempt(project)
    done = run(["sh", "-c", "mkdir -p src && echo hi > src/new.txt && echo more >> app.py"],
               project_mounts(ws, project))
    assert done.returncode == 0, done.stderr
    assert (ws / "src" / "new.txt").read_text() == "hi\n"
    assert (ws / "app.py").read_text().endswith("more\n")


@pytest.mark.parametrize("where", ["project root", "project's .git", "home", "/usr/local"])
def test_writing_outside_the_working_copy_fails_read_only_and_nothing_lands(project: Path, where: str) -> None:
    target = {"project root": project / "injected.txt", "project's .git": project / ".git" / "injected",
              "home": Path.home() / f".conductor-sandbox-test-{os.getpid()}",
              "/usr/local": Path(f"/usr/local/conductor-sandbox-test-{os.getpid()}")}[where]
    done = run(["sh", "-c", f"echo pwned > '{target}'"], project_mounts(attempt(project), project))
    assert done.returncode != 0
    assert "Read-only file system" in done.stderr or "Permission denied" in done.stderr
    assert not target.exists()


def test_a_python_write_outside_gets_erofs(project: Path, tmp_path: Path) -> None:
    target = project / "app.py"
    code = (f"import errno\ntry:\n    open({str(target)!r}, 'a').write('x')\nexcept OSError as e:\n"
            "    print(errno.errorcode[e.errno])\nelse:\n    print('WROTE')\n")
    done = run([sys.executable, "-c", code], project_mounts(attempt(project), project))
    assert done.stdout.strip() in ("EROFS", "EACCES")
    assert target.read_text() == "print('app')\n"


def test_tmp_is_private(project: Path) -> None:
    marker = f"/tmp/conductor-sandbox-private-{os.getpid()}"
    done = run(["sh", "-c", f"echo x > {marker} && cat {marker}"], project_mounts(attempt(project), project))
    assert done.returncode == 0 and done.stdout == "x\n"
    assert not Path(marker).exists()


def test_a_script_named_under_tmp_stays_readable_but_its_neighbours_do_not(project: Path, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "agent.py").write_text("print('agent ran')\n")
    (tools / "neighbour.txt").write_text("private\n")
    done = run(["sh", "-c", f"{sys.executable} {tools / 'agent.py'} && ls -A {tools}"],
               project_mounts(attempt(project), project))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "agent ran\nagent.py\n"


def test_the_projects_signing_key_cannot_be_read(project: Path) -> None:
    key = project / ".conductor" / "keys" / "signing.key"
    done = run(["sh", "-c", f"cat '{key}'; ls -A '{key.parent}'"], project_mounts(attempt(project), project))
    assert "PRIVATE KEY" not in done.stdout
    assert "No such file" in done.stderr
    assert key.read_text() == "PRIVATE KEY MATERIAL\n"  # hidden, not harmed


def test_the_key_stays_hidden_when_the_working_copy_is_the_project_itself(project: Path) -> None:
    key = project / ".conductor" / "keys" / "signing.key"
    done = run(["cat", str(key)], project_mounts(project, project))
    assert done.returncode != 0 and "PRIVATE KEY" not in done.stdout


def test_git_commit_inside_the_working_copy_works_and_the_origin_is_untouched(project: Path) -> None:
    ws = attempt(project)
    before = git(project, "rev-parse", "HEAD")
    script = ("echo change >> app.py && git add app.py && "
              "git -c user.name=agent -c user.email=a@a commit -qm 'agent commit' && git rev-parse HEAD")
    done = run(["sh", "-c", script], project_mounts(ws, project))
    assert done.returncode == 0, done.stderr
    assert git(ws, "log", "-1", "--format=%s").strip() == "agent commit"
    assert git(ws, "rev-parse", "HEAD").strip() == done.stdout.strip()
    assert git(project, "rev-parse", "HEAD") == before


def test_git_cannot_touch_the_origins_hooks_or_refs(project: Path) -> None:
    hook = project / ".git" / "hooks" / "pre-commit"
    script = f"echo 'echo owned' > '{hook}' || git -C '{project}' update-ref refs/heads/evil HEAD"
    done = run(["sh", "-c", script], project_mounts(attempt(project), project))
    assert done.returncode != 0
    assert not hook.exists()
    assert "evil" not in git(project, "branch", "--list")


class _Listener:
    """A TCP server on loopback outside the sandbox that counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.sendall(b"hello\n")
            conn.close()


def _connect_code(port: int) -> str:
    return (f"import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
            "    print('CONNECTED', s.recv(6))\nexcept OSError as e:\n    print('REFUSED', e)\n")


def test_network_deny_blocks_a_loopback_connection_to_a_server_outside(project: Path) -> None:
    server = _Listener()
    try:
        denied = run([sys.executable, "-c", _connect_code(server.port)], project_mounts(attempt(project), project),
                     SandboxSettings(mode="required", network="deny"))
        assert denied.stdout.startswith("REFUSED"), denied.stdout + denied.stderr
        assert server.accepted == 0
        allowed = run([sys.executable, "-c", _connect_code(server.port)], project_mounts(attempt(project), project),
                      SandboxSettings(mode="required", network="allow"))
        assert allowed.stdout.startswith("CONNECTED"), allowed.stdout + allowed.stderr
        assert server.accepted == 1
    finally:
        server.sock.close()


def test_extra_writable_folders_are_writable_and_only_those(project: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch-home"
    scratch.mkdir()
    done = run(["sh", "-c", f"echo cfg > '{scratch}/config'; echo x > '{tmp_path}/beside'; echo y > '{project}/y'"],
               project_mounts(attempt(project), project, writable=[scratch]))
    assert (scratch / "config").read_text() == "cfg\n"
    assert "Read-only file system" in done.stderr  # the project
    assert not (tmp_path / "beside").exists()  # went to the private /tmp, gone with it
    assert not (project / "y").exists()


def test_required_without_bubblewrap_refuses_with_a_clear_message(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(SandboxUnavailable) as caught:
        prepare(["true"], project_mounts(attempt(project), project), SandboxSettings(mode="required"))
    message = str(caught.value)
    assert "behavior.sandbox is `required`" in message
    assert "bubblewrap (`bwrap`) is not installed" in message and "nothing was run" in message


def test_a_bwrap_that_cannot_create_namespaces_is_unavailable(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    found = probe(str(fake))
    assert not found.ok and "No permissions to creating new namespace" in found.reason
    with pytest.raises(SandboxUnavailable, match="user namespaces"):
        prepare(["true"], Mounts(tmp_path), SandboxSettings(mode="required"), bwrap=str(fake))


def test_auto_without_bubblewrap_says_so_once_and_runs_unsandboxed(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "another-empty-bin"))
    said: list[str] = []
    first = prepare(["true"], project_mounts(attempt(project), project), SandboxSettings(mode="auto"), said.append)
    second = prepare(["true"], project_mounts(attempt(project), project), SandboxSettings(mode="auto"), said.append)
    assert not first.sandboxed and first.argv == ["true"] and second.argv == ["true"]
    assert len(said) <= 1  # once per process (another test may already have said it)
    assert "not sandboxed" in first.describe()


def test_off_never_sandboxes(project: Path) -> None:
    prepared = prepare(["true"], project_mounts(attempt(project), project), SandboxSettings(mode="off"))
    assert not prepared.sandboxed and prepared.argv == ["true"]
