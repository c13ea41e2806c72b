"""Entry point of the ``conductor`` console script: the group, whose commands load on first use.

``conductor --version`` is answered before anything else is imported (not even click), as is
``conductor lsp`` (the language server, as editors start it, needs no option parsing); a
command imports only its own module (``group.COMMANDS``): ``status`` never loads the language
server, the MCP SDK or the model client.
"""

from __future__ import annotations

import gc
import sys

from conductor import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:  # what click's version option prints, without importing click
        sys.stdout.write(f"conductor, version {__version__}\n")
        return
    if sys.argv[1:] in (["lsp"], ["lsp", "--stdio"]):  # how editors start the server: no option to parse
        from conductor.lsp import main as serve  # lazy: the language server, without click (~20 ms)

        serve(None)
        return
    # A command reads documents of up to 2 MiB (hundreds of thousands of nodes) and builds as
    # many small objects from them: collect the young generation less often, like the server.
    gc.set_threshold(50_000, 20, 50)
    from conductor.cli.group import cli  # lazy: click and the engine API (~0.2 s) are not needed for --version

    cli()
