"""The project on disk: owns where ``.conductor/`` and its parts live and how they are named.

``layout`` spells every path under ``.conductor/`` (no other module does), mints plan ids and
names the folders every walk skips; ``files`` reads what others wrote (regular files only,
bounded, never blocking) and writes atomically naming the file on failure; ``init`` and
``mcp_config`` create a project's files without ever overwriting a user's.
"""

from conductor.project.layout import ProjectLayout, find_project_root

__all__ = ["ProjectLayout", "find_project_root"]
