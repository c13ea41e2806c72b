"""Conductor: plans work for AI coding agents, hands steps to executors, checks the evidence.

The package is laid out one subpackage per part (see README, "Architecture"):
``contract`` (the published file shapes), ``storage`` (atomic files, hash-chained logs),
``validation``, ``policy``, ``project`` (the ``.conductor`` folder), ``handoff``, ``journal``,
``engine``, and the adapters ``cli``, ``lsp`` and ``mcp``.
"""

__version__ = "4.0.0.dev0"
CONTRACT_VERSION = "1.0"
