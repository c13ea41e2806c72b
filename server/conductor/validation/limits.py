"""Bounds that keep validation fast and safe on hostile input.

A Conductor document is small: a policy is tens of lines, a task a few kilobytes. These
limits are far above any real file and far below what could hang the editor.
"""

MAX_BYTES = 2 * 1024 * 1024
"""Larger files are not parsed at all (a 10 MB file gets one diagnostic at once)."""

MAX_DEPTH = 64
"""Deeper nesting of mappings and sequences is refused before the document is composed."""

MAX_NODES = 200_000
"""Most nodes a document may expand to once YAML aliases are followed (stops alias bombs)."""
