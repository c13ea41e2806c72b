"""The ``conductor`` command line: a thin adapter over the engine, one module per command group."""
