"""Token types and tokens of Go text/template source (text/template/parse/lex.go)."""

from __future__ import annotations

from .quote import quote
from .values import byte_len

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


class Item:
    """One token: its type (typ), start offset (pos), text (val) and the line it starts on.

    A plain class, not a named tuple: `collections` (for namedtuple) or `typing` (for
    NamedTuple) would be a start-up cost paid on every CreateInstance.
    """

    __slots__ = ("line", "pos", "typ", "val")

    def __init__(self, typ: str, pos: int, val: str, line: int) -> None:
        self.typ = typ
        self.pos = pos
        self.val = val
        self.line = line

    def __repr__(self) -> str:
        return f"Item({self.typ!r}, {self.pos}, {self.val!r}, {self.line})"

    def describe(self) -> str:
        """Render the token as Go's parser names it in error messages."""
        if self.typ == EOF:
            return "EOF"
        if self.typ == ERROR:
            return self.val
        if self.typ in KEYWORDS:
            return f"<{self.val}>"
        if byte_len(self.val) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)


def describe_rune(char: str) -> str:
    """Format a character as Go's %#U verb does."""
    if not char:
        return "U+FFFFFFFFFFFFFFFF"
    code = f"U+{ord(char):04X}"
    return f"{code} '{char}'" if char.isprintable() else code


def is_alnum(char: str) -> bool:
    """Report whether a character may be part of an identifier."""
    return char == "_" or char.isalpha() or char.isdecimal()
