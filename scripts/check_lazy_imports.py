"""Every import inside a function must say why it is there (`make lint` runs this).

Imports belong at the top of a module; one inside a function is allowed only where a measured
start-up cost needs it (a door such as `conductor --version` must not load the model client or
the MCP SDK), and then its line carries ``# lazy: <reason>``. Usage::

    python scripts/check_lazy_imports.py [server/conductor]

Prints each unexplained one as ``path:line: import …`` and exits 1 when there is any; prints
how many explained ones there are otherwise.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MARK = "# lazy:"


def nested_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, statement, explained) of every import inside a function body of ``path``."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom) and in_function:
                text = " ".join(lines[child.lineno - 1:child.end_lineno or child.lineno])
                found.append((child.lineno, lines[child.lineno - 1].strip(), MARK in text))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(ast.parse(source, filename=str(path)), False)
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "server/conductor")
    unexplained = explained = 0
    for path in sorted(root.rglob("*.py")):
        for line, text, ok in nested_imports(path):
            if ok:
                explained += 1
            else:
                unexplained += 1
                print(f"{path}:{line}: {text}  (move it to the top, or say why with `{MARK} <measured reason>`)")
    if unexplained:
        print(f"{unexplained} function-level import(s) without a reason", file=sys.stderr)
        return 1
    print(f"function-level imports: {explained}, each with its reason")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
