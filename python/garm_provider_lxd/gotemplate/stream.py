"""The parser's view of the token list: Go's three-token lookahead (parse.go)."""

from __future__ import annotations

from . import tokens as lx

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class _Source(Protocol):
        def next_item(self) -> lx.Item:
            """Return the next token of the source."""
            ...


ZERO = lx.Item(lx.EOF, 0, "", 0)


class TokenStream:
    """Reads tokens from a shared source with up to three tokens pushed back."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.token = [ZERO, ZERO, ZERO]
        self.peek_count = 0

    def next(self) -> lx.Item:
        """Return the next token (or character)."""
        if self.peek_count > 0:
            self.peek_count -= 1
        else:
            self.token[0] = self.source.next_item()
        return self.token[self.peek_count]

    def backup(self) -> None:
        """Push the last token back."""
        self.peek_count += 1

    def backup2(self, first: lx.Item) -> None:
        """Push back the given token and the current one."""
        self.token[1] = first
        self.peek_count = 2

    def backup3(self, second: lx.Item, first: lx.Item) -> None:
        """Push back two given tokens and the current one."""
        self.token[1] = first
        self.token[2] = second
        self.peek_count = 3

    def peek(self) -> lx.Item:
        """Return the next token (or character) without consuming it."""
        if self.peek_count > 0:
            return self.token[self.peek_count - 1]
        self.peek_count = 1
        self.token[0] = self.source.next_item()
        return self.token[0]

    def next_non_space(self) -> lx.Item:
        """Return the next token that is not a space."""
        while True:
            token = self.next()
            if token.typ != lx.SPACE:
                return token

    def peek_non_space(self) -> lx.Item:
        """Return the next non-space token without consuming it."""
        token = self.next_non_space()
        self.backup()
        return token
