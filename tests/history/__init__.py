"""Tests for conductor.history."""
