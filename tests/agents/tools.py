"""Where the agent end-to-end tests find the real coding-agent CLIs.

``scripts/install-agent-clis.sh`` (run by ``.ci/run``) installs them into a cache outside the
clone: aider in its own venv, Codex CLI in its own npm prefix. A test asks for one with
:func:`require_agent_tool`: outside CI a missing tool skips the test with the command that
installs it; under ``CI=true`` it fails (CI must install everything the suite needs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import IN_CI

INSTALL = "bash scripts/install-agent-clis.sh"


def cache_dir() -> Path:
    return Path(os.environ.get("CONDUCTOR_AGENT_TOOLS") or Path.home() / ".cache" / "conductor-agents")


LOCATIONS = {
    "aider": ("aider", "bin"),
    "codex": ("codex", "node_modules/.bin"),
}


def require_agent_tool(name: str) -> Path:
    """The folder holding ``name``'s executable (put it first on PATH), or skip/fail."""
    folder, sub = LOCATIONS[name]
    bin_dir = cache_dir() / folder / sub
    if (bin_dir / name).is_file() and os.access(bin_dir / name, os.X_OK):
        return bin_dir
    message = f"{name} is not installed in {cache_dir()} (run `{INSTALL}`; CI runs it in .ci/run)"
    if IN_CI:
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)
