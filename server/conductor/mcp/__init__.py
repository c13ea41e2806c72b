"""``conductor mcp``: the handoff queue over the Model Context Protocol.

A second door to the same queue: files stay the contract. ``next_task`` claims a task with
the same atomic rename as the file protocol, ``submit_result`` writes the same
``step_NNN.result.json`` and ``step_NNN.explanation.md`` into ``in_progress/`` and waits for
Conductor's verdict, which the engine (``conductor build``, the language server …) reaches
exactly as for a result written by hand. No tool bypasses verification.

Owns only the translation between MCP and the engine API (it imports nothing else of
Conductor's but ``contract``): :mod:`conductor.mcp.tools` (the
tool list: names, descriptions, input schemas derived from the published JSON Schemas) and
:mod:`conductor.mcp.server` (the stdio server on the official ``mcp`` SDK's low-level
``Server``). The agent side of the queue lives in :mod:`conductor.handoff.queue`, reached
through ``conductor.engine.api``; the editors' MCP configuration in
:mod:`conductor.project.mcp_config`. Only ``server`` imports the SDK; everything here uses
absolute imports, so the ``mcp`` SDK package is never shadowed.
"""
