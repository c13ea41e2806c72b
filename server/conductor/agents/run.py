"""Running an agent's process for one task: sandboxed, with only its own secrets, output redacted.

Why it exists: ``conductor agent --command`` and every preset start a process that works in
the attempt's working copy. Whatever it is, it runs the same way:

* in the bubblewrap sandbox the policy asks for (:mod:`conductor.sandbox`): only the working
  copy and the run's scratch folder writable, the signing keys hidden, network per policy;
* with an environment from which every secret is removed except those its configuration names
  (:func:`conductor.secrets.scrubbed_env`), plus the variables the preset sets;
* with its output captured into files outside the working copy (never held whole in memory),
  the tail kept, and every known secret value redacted before it is shown or stored;
* killed with its whole process group at the timeout.

:class:`~conductor.contract.result.AgentRun` is what really ran, recorded in the result (``agent_run``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from conductor.sandbox import Mounts, SandboxSettings, prepare
from conductor.secrets import redactor, scrubbed_env

OUTPUT_KEPT_BYTES = 256 * 1024  # the tail of stdout/stderr kept from a run


@dataclass
class ProcessOutcome:
    exit_code: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    duration_seconds: float
    sandbox: str

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


def agent_env(keep: Sequence[str], extra: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an agent process: secrets removed except ``keep``, then ``extra`` on top."""
    env = scrubbed_env(base, keep=keep)
    env.update(extra)
    return env


def _tail(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - OUTPUT_KEPT_BYTES))
        data = fh.read()
    text = data.decode("utf-8", "replace")
    if size > OUTPUT_KEPT_BYTES:
        text = f"[… {size - OUTPUT_KEPT_BYTES} earlier bytes not kept]\n" + text
    return text


def run_process(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float,
                mounts: Mounts, settings: SandboxSettings, stdin: str | None = None,
                warn: Callable[[str], None] | None = None, secrets: Sequence[str] = ()) -> ProcessOutcome:
    """Run ``argv`` in the sandbox; output tails redacted of every known secret and of ``secrets``.

    Raises :class:`conductor.sandbox.SandboxUnavailable` (before starting anything) when the
    policy requires a sandbox that cannot run.
    """
    prepared = prepare(list(argv), mounts, settings, warn)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="conductor-agent-output-") as scratch:
        out_path, err_path = Path(scratch) / "stdout", Path(scratch) / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(prepared.argv, cwd=cwd, env=dict(env), stdout=out, stderr=err,
                                    stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                    start_new_session=True)
            try:
                if stdin is not None:
                    assert proc.stdin is not None
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.write(stdin.encode("utf-8"))
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.close()
                code: int | None = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                # The whole group goes (a tool's children too), at the timeout or after a normal exit.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        duration = time.monotonic() - started
        scrub = redactor()
        extra = [s for s in secrets if s]

        def clean(text: str) -> str:
            text = scrub.text(text)
            for value in extra:
                text = text.replace(value, "[REDACTED]")
            return text

        return ProcessOutcome(code, clean(_tail(out_path)), clean(_tail(err_path)), duration, prepared.describe())
