"""Running git the way Conductor must: a clean environment, no hooks, no user or system config.

``git()`` returns stdout as text, ``run()`` the whole completed process (bytes); both raise
:class:`GitError` naming the command, the folder and git's own words. Nothing of the calling
environment that git reads (``GIT_DIR``, ``GIT_INDEX_FILE``, ``GIT_CONFIG_*`` …) leaks in, the
system and global config files are not read, hooks point at an empty folder, fsmonitor, gpg
signing and credential prompts are off, and the committer is always Conductor. Secret variables
(API keys, tokens) are not passed to git either: it has no use for them.

A git command that failed because the disk (or quota) is full raises
:class:`~conductor.storage.errors.DiskFull` naming the repository, not :class:`GitError`: it is
the machine's fault, and the engine halts resumably instead of failing the step.

A repository's own ``.git/config`` cannot be switched off by git; it belongs to the user and
Conductor watches it (:mod:`conductor.git.shared`) so an agent's change to it is caught and undone.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from conductor import secrets
from conductor.storage.errors import DiskFull, free_bytes

IDENTITY = {"GIT_AUTHOR_NAME": "Conductor", "GIT_AUTHOR_EMAIL": "conductor@localhost",
            "GIT_COMMITTER_NAME": "Conductor", "GIT_COMMITTER_EMAIL": "conductor@localhost"}
NO_HOOKS = os.devnull  # a hooks "folder" in which no hook can ever exist
TIMEOUT_SECONDS = 120
#: What git prints when a write ran out of space (its own words, or the C library's).
FULL_WORDS = (b"No space left on device", b"Disk quota exceeded")
#: A failed git command on a file system with less free space than this ran out of it: git
#: does not always say why a write failed ("unable to write new index file").
NEARLY_FULL_BYTES = 256 * 1024


class GitError(RuntimeError):
    """A git command failed; the message carries the command, the folder and git's own words."""


def safe_config() -> list[str]:
    """``-c`` options that override anything a repository's config could make git run."""
    return ["-c", f"core.hooksPath={NO_HOOKS}", "-c", "core.fsmonitor=false", "-c", "commit.gpgSign=false",
            "-c", "tag.gpgSign=false", "-c", "core.askPass=", "-c", "credential.helper=",
            "-c", "protocol.file.allow=always", "-c", "gc.auto=0", "-c", "maintenance.auto=false",
            "-c", "core.autocrlf=false", "-c", "core.safecrlf=false"]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: the caller's without any ``GIT_*``, and no global/system config."""
    env = {k: v for k, v in secrets.scrubbed_env().items() if not k.startswith("GIT_")}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
                "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", **IDENTITY})
    if extra:
        env.update(extra)
    return env


def run(cwd: str | os.PathLike[str], *args: str, input: bytes | None = None, check: bool = True,
        env: Mapping[str, str] | None = None, timeout: float = TIMEOUT_SECONDS) -> subprocess.CompletedProcess[bytes]:
    """Run ``git args`` in ``cwd``; the completed process (stdout/stderr as bytes)."""
    cmd = ["git", *safe_config(), *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, env=clean_env(env), timeout=timeout,
                              check=False)
    except FileNotFoundError as exc:
        raise GitError("git is not installed (Conductor needs it for forks and attempts)") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"`git {' '.join(args)}` did not finish within {timeout:g}s in {cwd}") from exc
    if proc.returncode != 0 and (check or any(w in proc.stderr for w in FULL_WORDS)):
        raise failure(cwd, args, proc)
    return proc


def failure(cwd: str | os.PathLike[str], args: Sequence[str],
            proc: subprocess.CompletedProcess[bytes]) -> GitError | DiskFull:
    """The error for a git command that failed: :class:`DiskFull` when the disk was the cause."""
    words = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()
    free = free_bytes(cwd)
    if any(w in proc.stderr for w in FULL_WORDS) or (free is not None and free < NEARLY_FULL_BYTES):
        return DiskFull(Path(cwd), free=free)
    return GitError(f"`git {' '.join(args)}` failed in {cwd}: {words}")


def git(cwd: str | os.PathLike[str], *args: str, check: bool = True, input: bytes | None = None,
        env: Mapping[str, str] | None = None) -> str:
    """Run ``git args`` in ``cwd``; its stdout as text, stripped."""
    return run(cwd, *args, check=check, input=input, env=env).stdout.decode("utf-8", "surrogateescape").strip()


def lines(cwd: str | os.PathLike[str], *args: str) -> Sequence[str]:
    out = git(cwd, *args)
    return out.splitlines() if out else []
