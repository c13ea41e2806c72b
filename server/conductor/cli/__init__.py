"""The ``conductor`` command line: a thin adapter over the engine API, one module per command group.

Owns only the terminal: argument parsing (click), rendering results as text or ``--json``,
progress lines, Ctrl-C wired to a clean halt, and exit codes (``group.py``: every engine
refusal becomes one line and its code, never a traceback). It imports ``conductor.engine.api``,
``contract``, ``validation`` and ``project.layout`` only (import-linter checks it in ``make lint``).
"""
