"""The project on disk: where ``.conductor/`` and its parts live, and ``conductor init``."""

from conductor.project.layout import ProjectLayout, find_project_root

__all__ = ["ProjectLayout", "find_project_root"]
