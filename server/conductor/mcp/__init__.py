"""``conductor mcp``: the handoff queue over the Model Context Protocol.

A second door to the same queue: files stay the contract. ``next_task`` claims a task with
the same atomic rename as the file protocol, ``submit_result`` writes the same
``step_NNN.result.json`` and ``step_NNN.explanation.md`` into ``in_progress/`` and waits for
Conductor's verdict, which the engine (``conductor build``, the language server …) reaches
exactly as for a result written by hand. No tool bypasses verification.

Modules: :mod:`conductor.mcp.queue` (claim, submit, wait for the verdict: plain functions
over the project folder), :mod:`conductor.mcp.tools` (the tool list: names, descriptions,
input schemas derived from the published JSON Schemas), :mod:`conductor.mcp.server` (the
stdio server on the official ``mcp`` SDK's low-level ``Server``) and
:mod:`conductor.mcp.config` (editor configuration snippets, also written by ``conductor
init``). Only ``server`` imports the SDK; everything here uses absolute imports, so the
``mcp`` SDK package is never shadowed.
"""
