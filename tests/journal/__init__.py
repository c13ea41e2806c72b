"""Tests for conductor.journal."""
