"""Tests for conductor.llm."""
