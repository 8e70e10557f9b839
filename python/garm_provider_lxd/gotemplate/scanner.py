"""Scanner primitives and literal scanning for the template lexer (parse/lex.go)."""

from __future__ import annotations

from .tokens import CHAR_CONSTANT, COMPLEX, ERROR, NUMBER, RAW_STRING, STRING, Item, is_alnum

_EOF = ""


class Scanner:
    """Position, line tracking and emitted items; scans number and quoted literals."""

    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.at_eof = False
        self.paren_depth = 0
        self.line = 1
        self.start_line = 1
        self.inside_action = False
        self.items: list[Item] = []

    def next(self) -> str:
        """Return the next token (or character)."""
        if self.pos >= len(self.input):
            self.at_eof = True
            return _EOF
        char = self.input[self.pos]
        self.pos += 1
        if char == "\n":
            self.line += 1
        return char

    def peek(self) -> str:
        """Return the next token (or character) without consuming it."""
        char = self.next()
        self.backup()
        return char

    def backup(self) -> None:
        """Push the last token back."""
        if not self.at_eof and self.pos > 0:
            self.pos -= 1
            if self.input[self.pos] == "\n":
                self.line -= 1

    def this_item(self, typ: str) -> Item:
        """Return the pending input as an item and start the next one."""
        item = Item(typ, self.start, self.input[self.start : self.pos], self.start_line)
        self.start = self.pos
        self.start_line = self.line
        return item

    def emit(self, typ: str) -> bool:
        """Emit the pending input as an item of type typ."""
        self.items.append(self.this_item(typ))
        return False

    def ignore(self) -> None:
        """Skip the pending input, counting its newlines."""
        self.line += self.input.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def accept(self, valid: str) -> bool:
        """Consume the next character if it is one of valid."""
        char = self.next()
        if char and char in valid:
            return True
        self.backup()
        return False

    def accept_run(self, valid: str) -> None:
        """Consume a run of characters from valid (none of which is a newline)."""
        text, pos, end = self.input, self.pos, len(self.input)
        while pos < end and text[pos] in valid:
            pos += 1
        self.pos = pos

    def errorf(self, message: str) -> bool:
        """Emit an error token (the parser reports it with its position) and stop the scan."""
        self.items.append(Item(ERROR, self.start, message, self.start_line))
        return True

    def lex_char(self) -> bool:
        """Scan a character constant."""
        while True:
            char = self.next()
            if char == "\\":
                char = self.next()
                if char not in (_EOF, "\n"):
                    continue
            if char in (_EOF, "\n"):
                return self.errorf("unterminated character constant")
            if char == "'":
                return self.emit(CHAR_CONSTANT)

    def lex_number(self) -> bool:
        """Scan a number or complex literal."""
        if not self.scan_number():
            return self.errorf(f"bad number syntax: {self._quoted_pending()}")
        if self.peek() in ("+", "-"):
            if not self.scan_number() or self.input[self.pos - 1] != "i":
                return self.errorf(f"bad number syntax: {self._quoted_pending()}")
            return self.emit(COMPLEX)
        return self.emit(NUMBER)

    def _quoted_pending(self) -> str:
        from .quote import quote

        return quote(self.input[self.start : self.pos])

    def scan_number(self) -> bool:
        """Consume the characters of a number literal."""
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        char = self.peek()
        if char and is_alnum(char):
            self.next()
            return False
        return True

    def lex_quote(self) -> bool:
        """Scan a double-quoted string (searching, so that the work is linear)."""
        text, pos = self.input, self.pos
        quote = text.find('"', pos)
        while True:
            stop = quote if quote >= 0 else len(text)
            slash = text.find("\\", pos, stop)
            if text.find("\n", pos, stop if slash < 0 else slash) >= 0:
                return self.errorf("unterminated quoted string")
            if slash < 0:
                if quote < 0:
                    return self.errorf("unterminated quoted string")
                self.pos = quote + 1
                return self.emit(STRING)
            if text[slash + 1 : slash + 2] in ("", "\n"):
                return self.errorf("unterminated quoted string")
            pos = slash + 2
            if 0 <= quote < pos:
                quote = text.find('"', pos)

    def lex_raw_quote(self) -> bool:
        """Scan a raw string."""
        end = self.input.find("`", self.pos)
        if end < 0:
            return self.errorf("unterminated raw quoted string")
        self.line += self.input.count("\n", self.pos, end)
        self.pos = end + 1
        return self.emit(RAW_STRING)
