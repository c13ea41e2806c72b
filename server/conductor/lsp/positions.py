"""Converts validation positions (code points) to the negotiated LSP position encoding.

Validation counts characters in Unicode code points; LSP clients count UTF-16 code units
unless they negotiated ``utf-8`` or ``utf-32``. A line with an emoji (two UTF-16 units, four
UTF-8 bytes) or CJK text (one UTF-16 unit, three UTF-8 bytes) before an error shifts the
column, so every range goes through here on its way out, and every position on its way in.
"""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types as lsp

from conductor.validation.diagnostics import Range


def _units(text: str, encoding: str) -> int:
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", errors="surrogatepass"))
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


class Lines:
    """The lines of a document, split once, for conversions in both directions."""

    def __init__(self, text: str, encoding: str = "utf-16") -> None:
        self.lines: Sequence[str] = text.split("\n")
        self.encoding = str(encoding)

    def line(self, index: int) -> str:
        if 0 <= index < len(self.lines):
            return self.lines[index].rstrip("\r")
        return ""

    def to_client(self, line: int, character: int) -> lsp.Position:
        """Code-point position → client position (clamped to the document)."""
        if line >= len(self.lines):
            last = len(self.lines) - 1
            return lsp.Position(line=max(last, 0), character=_units(self.line(last), self.encoding))
        text = self.line(line)
        return lsp.Position(line=line, character=_units(text[: max(character, 0)], self.encoding))

    def range(self, rng: Range) -> lsp.Range:
        return lsp.Range(start=self.to_client(rng.start_line, rng.start_character),
                         end=self.to_client(rng.end_line, rng.end_character))

    def from_client(self, position: lsp.Position) -> tuple[int, int]:
        """Client position → (line, code-point character)."""
        text = self.line(position.line)
        if self.encoding == "utf-32" or text.isascii():
            return position.line, min(position.character, len(text))
        units = 0
        for index, ch in enumerate(text):
            if units >= position.character:
                return position.line, index
            units += _units(ch, self.encoding)
        return position.line, len(text)
