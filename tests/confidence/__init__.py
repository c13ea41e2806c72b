"""Tests for conductor.confidence."""
