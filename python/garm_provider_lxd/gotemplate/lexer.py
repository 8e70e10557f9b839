"""Tokenizer for Go text/template source, following text/template/parse/lex.go."""

from __future__ import annotations

from typing import NamedTuple

# Item types, as in lex.go.
ERROR = "error"
BOOL = "bool"
CHAR = "char"
CHAR_CONSTANT = "char constant"
COMPLEX = "complex"
ASSIGN = "="
DECLARE = ":="
EOF = "EOF"
FIELD = "field"
IDENTIFIER = "identifier"
LEFT_DELIM = "{{"
LEFT_PAREN = "("
NUMBER = "number"
PIPE = "|"
RAW_STRING = "raw string"
RIGHT_DELIM = "}}"
RIGHT_PAREN = ")"
SPACE = "space"
STRING = "string"
TEXT = "text"
VARIABLE = "variable"
# Keywords.
BLOCK = "block"
BREAK = "break"
CONTINUE = "continue"
DOT = "."
DEFINE = "define"
ELSE = "else"
END = "end"
IF = "if"
NIL = "nil"
RANGE = "range"
TEMPLATE = "template"
WITH = "with"
KEYWORDS = frozenset({BLOCK, BREAK, CONTINUE, DOT, DEFINE, ELSE, END, IF, NIL, RANGE})
KEYWORDS = KEYWORDS | {TEMPLATE, WITH}

_LEFT = "{{"
_RIGHT = "}}"
_SPACE = " \t\r\n"
_EOF = ""


class Item(NamedTuple):
    """One token: its type, start offset, text and the line it starts on."""

    typ: str
    pos: int
    val: str
    line: int

    def describe(self) -> str:
        """Render the token as Go's parser names it in error messages."""
        if self.typ == EOF:
            return "EOF"
        if self.typ == ERROR:
            return self.val
        if self.typ in KEYWORDS:
            return f"<{self.val}>"
        from .quote import quote
        from .values import byte_len

        if byte_len(self.val) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)


def describe_rune(char: str) -> str:
    """Format a character as Go's %#U verb does."""
    if not char:
        return "U+FFFFFFFFFFFFFFFF"
    code = f"U+{ord(char):04X}"
    return f"{code} '{char}'" if char.isprintable() else code


def _is_alnum(char: str) -> bool:
    return char == "_" or char.isalpha() or char.isdecimal()


class _Lexer:
    """State of the scanner; run() produces the whole token list."""

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
        if self.pos >= len(self.input):
            self.at_eof = True
            return _EOF
        char = self.input[self.pos]
        self.pos += 1
        if char == "\n":
            self.line += 1
        return char

    def peek(self) -> str:
        char = self.next()
        self.backup()
        return char

    def backup(self) -> None:
        if not self.at_eof and self.pos > 0:
            self.pos -= 1
            if self.input[self.pos] == "\n":
                self.line -= 1

    def this_item(self, typ: str) -> Item:
        item = Item(typ, self.start, self.input[self.start : self.pos], self.start_line)
        self.start = self.pos
        self.start_line = self.line
        return item

    def emit(self, typ: str) -> bool:
        self.items.append(self.this_item(typ))
        return False

    def ignore(self) -> None:
        self.line += self.input.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def accept(self, valid: str) -> bool:
        char = self.next()
        if char and char in valid:
            return True
        self.backup()
        return False

    def accept_run(self, valid: str) -> None:
        while True:
            char = self.next()
            if not char or char not in valid:
                break
        self.backup()

    def errorf(self, message: str) -> bool:
        self.items.append(Item(ERROR, self.start, message, self.start_line))
        return True

    def run(self) -> list[Item]:
        """Scan the whole input; stop after EOF or the first error."""
        while True:
            done = self.lex_inside_action() if self.inside_action else self.lex_text()
            if done or (self.items and self.items[-1].typ in (EOF, ERROR)):
                return self.items

    # State functions: each returns True when scanning must stop (an error).

    def lex_text(self) -> bool:
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
        if _has_right_trim(self.input, self.pos) and self.input.startswith(_RIGHT, self.pos + 2):
            return True, True
        return self.input.startswith(_RIGHT, self.pos), False

    def lex_left_delim(self) -> bool:
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
        if _is_alnum(char):
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
        spaces = 0
        while self.peek() in (" ", "\t", "\r", "\n"):
            self.next()
            spaces += 1
        if _has_right_trim(self.input, self.pos - 1) and self.input.startswith(
            _RIGHT, self.pos + 1
        ):
            self.backup()
            if spaces == 1:
                return self.lex_right_delim()
        return self.emit(SPACE)

    def lex_identifier(self) -> bool:
        while True:
            char = self.next()
            if char and _is_alnum(char):
                continue
            self.backup()
            word = self.input[self.start : self.pos]
            if not self.at_terminator():
                return self.errorf(f"bad character {describe_rune(char)}")
            if word in KEYWORDS:
                return self.emit(word)
            if word in ("true", "false"):
                return self.emit(BOOL)
            return self.emit(IDENTIFIER)

    def lex_variable(self) -> bool:
        if self.at_terminator():
            return self.emit(VARIABLE)
        return self.lex_field_or_variable(VARIABLE)

    def lex_field_or_variable(self, typ: str) -> bool:
        if self.at_terminator():
            return self.emit(VARIABLE if typ == VARIABLE else DOT)
        while True:
            char = self.next()
            if not char or not _is_alnum(char):
                self.backup()
                break
        if not self.at_terminator():
            return self.errorf(f"bad character {describe_rune(char)}")
        return self.emit(typ)

    def at_terminator(self) -> bool:
        char = self.peek()
        if char == _EOF or char in " \t\r\n.,|:)(":
            return True
        return self.input.startswith(_RIGHT, self.pos)

    def lex_char(self) -> bool:
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
        if char and _is_alnum(char):
            self.next()
            return False
        return True

    def lex_quote(self) -> bool:
        while True:
            char = self.next()
            if char == "\\":
                char = self.next()
                if char not in (_EOF, "\n"):
                    continue
            if char in (_EOF, "\n"):
                return self.errorf("unterminated quoted string")
            if char == '"':
                return self.emit(STRING)

    def lex_raw_quote(self) -> bool:
        while True:
            char = self.next()
            if char == _EOF:
                return self.errorf("unterminated raw quoted string")
            if char == "`":
                return self.emit(RAW_STRING)


def _has_left_trim(text: str, pos: int) -> bool:
    return text[pos : pos + 1] == "-" and text[pos + 1 : pos + 2] in (" ", "\t", "\r", "\n")


def _has_right_trim(text: str, pos: int) -> bool:
    return text[pos : pos + 1] in (" ", "\t", "\r", "\n") and text[pos + 1 : pos + 2] == "-"


def _left_trim_length(text: str, pos: int) -> int:
    rest = text[pos:]
    return len(rest) - len(rest.lstrip(_SPACE))


def lex(text: str) -> list[Item]:
    """Tokenize template source; the list ends with an EOF or an error item."""
    return _Lexer(text).run()
