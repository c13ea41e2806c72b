"""Pytest fixtures shared across the suite; ``tests/conftest.py`` imports them.

``openai_server`` is a started :class:`~tests.support.openai_server.ScriptedOpenAIServer`
with an empty script; add rules in the test (``openai_server.add({...})``) and point
Conductor at ``openai_server.base_url``. It is stopped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.openai_server import ScriptedOpenAIServer


@pytest.fixture
def openai_server() -> Iterator[ScriptedOpenAIServer]:
    server = ScriptedOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()
