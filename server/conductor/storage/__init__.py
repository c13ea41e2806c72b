"""Durable files: atomic writes and append-only, hash-chained JSON-lines logs.

Both the handoff audit log and the plan journal are chained logs; task, result, metrics
and provenance files are written atomically. Nothing here knows what the records mean.
"""

from conductor.storage.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from conductor.storage.chainlog import ChainBreak, ChainLog, verify_chain

__all__ = ["ChainBreak", "ChainLog", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "verify_chain"]
