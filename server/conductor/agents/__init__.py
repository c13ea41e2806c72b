"""Coding-agent CLIs as executors: presets (data), the prompt a task becomes, and how their process runs.

``conductor agent --preset NAME`` (see :mod:`conductor.handoff.agent`) uses :mod:`.presets` to
turn a task into one tool's non-interactive command line, :mod:`.prompt` to say what the task
enforces, and :mod:`.run` to run it sandboxed with only its own secrets.
"""
