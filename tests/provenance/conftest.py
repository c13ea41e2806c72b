"""Shares the hand-off test fixtures (real projects, in-process reference agents)."""

from tests.handoff.conftest import agent_thread

__all__ = ["agent_thread"]
