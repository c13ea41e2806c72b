"""Reusable test helpers: a scripted OpenAI-compatible server and its pytest fixture."""
