"""Makes the ``openai_server`` fixture available to the LLM tests until tests/conftest.py imports it."""

from tests.support.fixtures import openai_server

__all__ = ["openai_server"]
