"""The engine: the one API behind the CLI, the language server and the MCP server.

Owns the operations a person or an agent can ask for. ``api`` is the door (typed results,
one :class:`~conductor.engine.errors.EngineError` hierarchy with codes, domain errors
translated at the edge); ``views`` builds what every door shows of a plan from the journal's
one projection (the ``conductor/stepChanged`` payload included); ``report`` renders it as
text; ``config`` reads ``config.yaml``; the runner and its helpers (``planning``, ``scoring``,
``llm_executor``, ``llm_session``, ``lock``) plan, execute, repair, score and merge.
"""
