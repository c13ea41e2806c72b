"""Run an agent's command where it can change nothing but its own working copy.

Why it exists: Conductor checks the evidence after a step, but where Conductor itself starts
the agent (``conductor agent --command``/``--preset``, the llm executor's edits) it can also
*prevent*: the command runs in a bubblewrap sandbox (``bwrap``, the approach Linux sandboxes of
coding agents use) in which

* the whole file system is mounted read-only,
* the attempt's working copy (its own ``.git`` included, so agents that commit still work) and
  a few scratch folders the caller names are writable,
* ``/tmp`` is private and empty (a write there vanishes with the sandbox; a project that
  itself lives under ``/tmp`` stays visible read-only), ``/dev`` and ``/proc`` are the
  sandbox's own,
* the project's signing keys (``.conductor/keys/``) are hidden under an empty tmpfs,
* the network is cut (a network namespace of its own, loopback included) when the policy says
  ``behavior.network: deny``.

``behavior.sandbox`` chooses what happens without bubblewrap (missing, or user namespaces
unavailable): ``auto`` says so once and runs the command unsandboxed, ``required`` refuses
(:class:`SandboxUnavailable`), ``off`` never sandboxes. :func:`probe` finds out by running
``bwrap`` once; :func:`prepare` turns a command into the argument vector to execute.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import conductor
from conductor.project.layout import ProjectLayout

log = logging.getLogger("conductor.sandbox")

NetworkPolicy = Literal["allow", "deny"]
SandboxMode = Literal["auto", "required", "off"]
PROBE_TIMEOUT_SECONDS = 20


class SandboxUnavailable(RuntimeError):
    """``behavior.sandbox: required`` and bubblewrap cannot run here; nothing was started."""


@dataclass(frozen=True)
class Availability:
    """Whether bubblewrap works on this machine, and if not, why (one sentence)."""

    ok: bool
    bwrap: str | None
    reason: str = ""


@dataclass(frozen=True)
class SandboxSettings:
    """The two policy keys (``behavior.sandbox``, ``behavior.network``) that govern the sandbox."""

    mode: SandboxMode = "auto"
    network: NetworkPolicy = "allow"

    @classmethod
    def from_policy(cls, policy: object) -> SandboxSettings:
        """From an effective policy (``conductor.policy.EffectivePolicy``); defaults when it has no such keys."""
        limits = getattr(policy, "limits", {}) or {}
        mode = getattr(limits.get("sandbox"), "value", "auto")
        network = getattr(limits.get("network"), "value", "allow")
        return cls(mode="required" if mode == "required" else "off" if mode == "off" else "auto",
                   network="deny" if network == "deny" else "allow")


@dataclass(frozen=True)
class Mounts:
    """What the sandboxed command may write, and what it must not see."""

    workspace: Path
    writable: Sequence[Path] = ()
    hidden: Sequence[Path] = ()
    readable: Sequence[Path] = ()  # shown read-only even under the private /tmp (the project itself)


@dataclass
class Prepared:
    """The command to execute (wrapped in ``bwrap`` or not) and what was decided."""

    argv: list[str]
    sandboxed: bool
    note: str = ""
    settings: SandboxSettings = field(default_factory=SandboxSettings)

    def describe(self) -> str:
        if self.sandboxed:
            return f"bubblewrap sandbox (network {self.settings.network})"
        return f"not sandboxed ({self.note})" if self.note else "not sandboxed"


_probe_lock = threading.Lock()
_probe_cache: dict[str, Availability] = {}
_warned: set[str] = set()


def probe(bwrap: str | None = None) -> Availability:
    """Can bubblewrap start a sandbox like ours here? Runs ``bwrap … true`` once per executable."""
    path = bwrap or shutil.which("bwrap")
    if path is None:
        return Availability(False, None, "bubblewrap (`bwrap`) is not installed (Debian/Ubuntu package `bubblewrap`)")
    with _probe_lock:
        cached = _probe_cache.get(path)
        if cached is not None:
            return cached
        argv = [path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                "--unshare-pid", "--unshare-net", "--die-with-parent", "--", "true"]
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=PROBE_TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as exc:
            found = Availability(False, path, f"bubblewrap could not start: {exc}")
        else:
            if done.returncode == 0:
                found = Availability(True, path)
            else:
                detail = " ".join(done.stderr.split())[:300] or f"exit code {done.returncode}"
                found = Availability(False, path, f"bubblewrap cannot create its namespaces here "
                                                  f"(user namespaces unavailable?): {detail}")
        _probe_cache[path] = found
        return found


def _say_once(reason: str, warn: Callable[[str], None] | None) -> None:
    with _probe_lock:
        if reason in _warned:
            return
        _warned.add(reason)
    message = f"sandbox: {reason}; agents run unsandboxed (set behavior.sandbox: required to refuse instead)"
    log.warning(message)
    if warn is not None:
        warn(message)


PRIVATE_FOLDERS = ("/tmp/", "/var/tmp/", "/dev/shm/")


def bwrap_argv(bwrap: str, command: Sequence[str], mounts: Mounts, network: NetworkPolicy) -> list[str]:
    """The ``bwrap`` argument vector that runs ``command`` with ``mounts`` (order matters: later mounts win)."""
    workspace = mounts.workspace.resolve()
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--tmpfs", "/var/tmp", "--tmpfs", "/dev/shm",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session"]
    if network == "deny":
        argv.append("--unshare-net")
    for shown in mounts.readable:  # a project under /tmp stays visible, and read-only, over the private /tmp
        if shown.is_dir():
            resolved = str(shown.resolve())
            argv += ["--ro-bind", resolved, resolved]
    for named in _private_files_named(command):  # `python /tmp/x/agent.py`: the script the user named stays readable
        argv += ["--ro-bind", named, named]
    for own in _own_environment():  # Conductor's own environment under /tmp (a venv there): its tools stay runnable
        argv += ["--ro-bind", own, own]
    for extra in mounts.writable:
        if extra.exists():
            resolved = str(extra.resolve())
            argv += ["--bind", resolved, resolved]
    argv += ["--bind", str(workspace), str(workspace)]
    for hidden in mounts.hidden:  # last, so a key folder inside a writable folder is hidden too
        if hidden.is_dir() and not hidden.is_symlink():
            argv += ["--tmpfs", str(hidden.resolve())]
    argv += ["--chdir", str(workspace), "--", *command]
    return argv


def _own_environment() -> list[str]:
    """This interpreter's environment (``sys.prefix``) and the folder Conductor is imported from (an editable
    install's source), those of them that lie under a folder the sandbox makes private."""
    places = {os.path.realpath(sys.prefix), os.path.dirname(os.path.dirname(os.path.realpath(conductor.__file__)))}
    return sorted(p for p in places if (p + "/").startswith(PRIVATE_FOLDERS) and os.path.isdir(p))


def _private_files_named(command: Sequence[str]) -> list[str]:
    """Regular files the command names by absolute path under a folder the sandbox makes private.

    Only the file itself is shown (read-only), never its folder: other files under ``/tmp`` stay hidden.
    """
    named: list[str] = []
    for arg in command:  # `sh -c "python /tmp/x/agent.py --fast"` names it inside one argument
        try:
            words = shlex.split(arg) if " " in arg else [arg]
        except ValueError:
            words = arg.split()
        for word in words:
            path = Path(word)
            if word.startswith(PRIVATE_FOLDERS) and path.is_file() and not path.is_symlink() and word not in named:
                named.append(word)
    return named


def prepare(command: Sequence[str], mounts: Mounts, settings: SandboxSettings,
            warn: Callable[[str], None] | None = None, bwrap: str | None = None) -> Prepared:
    """``command`` wrapped for the sandbox ``settings`` ask for.

    Raises :class:`SandboxUnavailable` when the sandbox is ``required`` and cannot run. With
    ``auto`` and no working bubblewrap the reason is said once per process (``warn`` and the
    log) and the command runs as it is.
    """
    if settings.mode == "off":
        return Prepared(list(command), False, "behavior.sandbox: off", settings)
    available = probe(bwrap)
    if not available.ok or available.bwrap is None:
        if settings.mode == "required":
            raise SandboxUnavailable(
                f"behavior.sandbox is `required` but {available.reason}; nothing was run. Install bubblewrap "
                "and allow user namespaces, or set behavior.sandbox: auto in .conductor/policy.yaml"
            )
        _say_once(available.reason, warn)
        return Prepared(list(command), False, available.reason, settings)
    return Prepared(bwrap_argv(available.bwrap, command, mounts, settings.network), True, "", settings)


def project_mounts(workspace: Path, project_root: Path | None, writable: Sequence[Path] = ()) -> Mounts:
    """The usual mounts: the working copy and ``writable`` open, the project's keys hidden."""
    hidden: list[Path] = []
    readable: list[Path] = []
    if project_root is not None:
        hidden.append(ProjectLayout.at(project_root).keys_dir)
        readable.append(project_root)
    return Mounts(workspace=workspace, writable=tuple(writable), hidden=tuple(hidden), readable=tuple(readable))


__all__ = [
    "Availability",
    "Mounts",
    "NetworkPolicy",
    "Prepared",
    "SandboxMode",
    "SandboxSettings",
    "SandboxUnavailable",
    "bwrap_argv",
    "prepare",
    "probe",
    "project_mounts",
]
