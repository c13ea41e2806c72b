"""The engine: the one API behind the CLI, the language server and the MCP server.

``conductor.engine.api`` is the facade the adapters call; the modules beside it plan,
execute (handoff or llm), verify, score forks, learn and repair.
"""
