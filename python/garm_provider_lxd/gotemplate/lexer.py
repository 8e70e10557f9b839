"""Tokenizer for Go text/template source, following text/template/parse/lex.go."""

from __future__ import annotations

from .quote import quote
from .tokens import (
    ASSIGN,
    BOOL,
    CHAR,
    CHAR_CONSTANT,
    COMPLEX,
    DECLARE,
    DOT,
    EOF,
    ERROR,
    FIELD,
    IDENTIFIER,
    KEYWORDS,
    LEFT_DELIM,
    LEFT_PAREN,
    NUMBER,
    PIPE,
    RAW_STRING,
    RIGHT_DELIM,
    RIGHT_PAREN,
    SPACE,
    STRING,
    TEXT,
    VARIABLE,
    Item,
    describe_rune,
    is_alnum,
)

_LEFT = "{{"
_RIGHT = "}}"
_SPACE = " \t\r\n"
_EOF = ""


class Lexer:
    """Go's lexer: the state functions that turn template source into items, one at a time."""

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
        self.head = 0
        self.last: Item | None = None

    def next_item(self) -> Item:
        """Scan just far enough to return the next item; after EOF or an error, repeat it."""
        items = self.items
        while self.head >= len(items):
            if self.last is not None:
                return self.last
            items.clear()
            self.head = 0
            done = self.lex_inside_action() if self.inside_action else self.lex_text()
            if done or (items and items[-1].typ in (EOF, ERROR)):
                self.last = items[-1]
        item = items[self.head]
        self.head += 1
        return item

    # Scanning primitives.

    def next(self) -> str:
        """Consume and return the next character ("" at the end of the input)."""
        if self.pos >= len(self.input):
            self.at_eof = True
            return _EOF
        char = self.input[self.pos]
        self.pos += 1
        if char == "\n":
            self.line += 1
        return char

    def peek(self) -> str:
        """Return the next character without consuming it."""
        char = self.next()
        self.backup()
        return char

    def backup(self) -> None:
        """Step back over the last character consumed."""
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

    # State functions: each returns True when scanning must stop (an error).

    def lex_text(self) -> bool:
        """Scan text up to the next action."""
        index = self.input.find(_LEFT, self.pos)
        if index < 0:
            self.pos = len(self.input)
            if self.pos > self.start:
                self.line += self.input.count("\n", self.start, self.pos)
                return self.emit(TEXT)
            return self.emit(EOF)
        if index > self.pos:
            self.pos = index
            trim = 0
            if _has_left_trim(self.input, self.pos + len(_LEFT)):
                text = self.input[self.start : self.pos]
                trim = len(text) - len(text.rstrip(_SPACE))
            self.pos -= trim
            self.line += self.input.count("\n", self.start, self.pos)
            item = self.this_item(TEXT)
            self.pos += trim
            self.ignore()
            if item.val:
                self.items.append(item)
                return False
        return self.lex_left_delim()

    def at_right_delim(self) -> tuple[bool, bool]:
        """Report whether a right delimiter (and a trim marker) is next."""
        if _has_right_trim(self.input, self.pos) and self.input.startswith(_RIGHT, self.pos + 2):
            return True, True
        return self.input.startswith(_RIGHT, self.pos), False

    def lex_left_delim(self) -> bool:
        """Scan a left delimiter and its trim marker."""
        self.pos += len(_LEFT)
        after = 2 if _has_left_trim(self.input, self.pos) else 0
        if self.input.startswith("/*", self.pos + after):
            self.pos += after
            self.ignore()
            return self.lex_comment()
        item = self.this_item(LEFT_DELIM)
        self.inside_action = True
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        self.items.append(item)
        return False

    def lex_comment(self) -> bool:
        """Scan a comment."""
        self.pos += 2
        index = self.input.find("*/", self.pos)
        if index < 0:
            return self.errorf("unclosed comment")
        self.pos = index + 2
        delim, trim = self.at_right_delim()
        if not delim:
            return self.errorf("comment ends before closing delimiter")
        self.line += self.input.count("\n", self.start, self.pos)
        self.this_item("comment")
        if trim:
            self.pos += 2
        self.pos += len(_RIGHT)
        if trim:
            self.pos += _left_trim_length(self.input, self.pos)
        self.ignore()
        return False

    def lex_right_delim(self) -> bool:
        """Scan a right delimiter and its trim marker."""
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += len(_RIGHT)
        item = self.this_item(RIGHT_DELIM)
        if trim:
            self.pos += _left_trim_length(self.input, self.pos)
            self.ignore()
        self.inside_action = False
        self.items.append(item)
        return False

    def lex_inside_action(self) -> bool:
        """Scan one item inside an action."""
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim()
            return self.errorf("unclosed left paren")
        char = self.next()
        if char == _EOF:
            return self.errorf("unclosed action")
        if char in _SPACE:
            self.backup()
            return self.lex_space()
        simple = {"=": ASSIGN, "|": PIPE}
        if char in simple:
            return self.emit(simple[char])
        if char == ":":
            if self.next() != "=":
                return self.errorf("expected :=")
            return self.emit(DECLARE)
        if char == '"':
            return self.lex_quote()
        if char == "`":
            return self.lex_raw_quote()
        if char == "$":
            return self.lex_variable()
        if char == "'":
            return self.lex_char()
        following = self.input[self.pos : self.pos + 1]
        if char == "." and following and not "0" <= following <= "9":
            return self.lex_field_or_variable(FIELD)
        if char in "+-." or "0" <= char <= "9":
            self.backup()
            return self.lex_number()
        if is_alnum(char):
            self.backup()
            return self.lex_identifier()
        if char == "(":
            self.paren_depth += 1
            return self.emit(LEFT_PAREN)
        if char == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                return self.errorf("unexpected right paren")
            return self.emit(RIGHT_PAREN)
        if " " <= char <= "~":
            return self.emit(CHAR)
        return self.errorf(f"unrecognized character in action: {describe_rune(char)}")

    def lex_space(self) -> bool:
        """Scan a run of spaces."""
        spaces = _left_trim_length(self.input, self.pos)
        self.line += self.input.count("\n", self.pos, self.pos + spaces)
        self.pos += spaces
        if _has_right_trim(self.input, self.pos - 1) and self.input.startswith(
            _RIGHT, self.pos + 1
        ):
            self.backup()
            if spaces == 1:
                return self.lex_right_delim()
        return self.emit(SPACE)

    def lex_identifier(self) -> bool:
        """Scan an identifier or keyword."""
        self.pos = _word_end(self.input, self.pos)
        word = self.input[self.start : self.pos]
        if not self.at_terminator():
            return self.errorf(f"bad character {describe_rune(self.peek())}")
        if word in KEYWORDS:
            return self.emit(word)
        if word in ("true", "false"):
            return self.emit(BOOL)
        return self.emit(IDENTIFIER)

    def lex_variable(self) -> bool:
        """Scan $ or $name."""
        if self.at_terminator():
            return self.emit(VARIABLE)
        return self.lex_field_or_variable(VARIABLE)

    def lex_field_or_variable(self, typ: str) -> bool:
        """Scan .Field or $variable."""
        if self.at_terminator():
            return self.emit(VARIABLE if typ == VARIABLE else DOT)
        self.pos = _word_end(self.input, self.pos)
        if not self.at_terminator():
            return self.errorf(f"bad character {describe_rune(self.peek())}")
        return self.emit(typ)

    def at_terminator(self) -> bool:
        """Report whether the next character may end an identifier."""
        char = self.peek()
        if char == _EOF or char in " \t\r\n.,|:)(":
            return True
        return self.input.startswith(_RIGHT, self.pos)

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


def _word_end(text: str, pos: int) -> int:
    """Return where the run of identifier characters starting at pos ends."""
    end = len(text)
    while pos < end:
        char = text[pos]
        if not (char == "_" or char.isalpha() or char.isdecimal()):
            break
        pos += 1
    return pos


def _has_left_trim(text: str, pos: int) -> bool:
    return text[pos : pos + 1] == "-" and text[pos + 1 : pos + 2] in (" ", "\t", "\r", "\n")


def _has_right_trim(text: str, pos: int) -> bool:
    return text[pos : pos + 1] in (" ", "\t", "\r", "\n") and text[pos + 1 : pos + 2] == "-"


def _left_trim_length(text: str, pos: int) -> int:
    """Count the spaces at pos, looking at a growing window so that the work is linear."""
    end, window = pos, 64
    while end < len(text):
        chunk = text[end : end + window]
        spaces = len(chunk) - len(chunk.lstrip(_SPACE))
        end += spaces
        if spaces < len(chunk):
            break
        window *= 2
    return end - pos
