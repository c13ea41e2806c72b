"""Shared test configuration.

``require_tool`` is how a test asks for a system program (git, nvim, chromium, node …):
outside CI a missing tool skips the test with a reason; under ``CI=true`` it fails, because
CI must install everything the suite needs.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (CI installs it in .ci/run)"
    if IN_CI:
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)


# a real OpenAI-compatible server on loopback; projects the real engine built
from tests.support.fixtures import demo_project, mixed_project, openai_server  # noqa: E402,F401
