"""Token types and tokens of Go text/template source (text/template/parse/lex.go)."""

from __future__ import annotations

from .quote import quote
from .values import byte_len

# Not `typing.NamedTuple`: `typing` (with the `re` and `enum` it imports) is a start-up cost paid
# on every CreateInstance. The type checker sees the NamedTuple; at run time the same fields come
# from collections.namedtuple.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple

    class _ItemFields(NamedTuple):
        typ: str
        pos: int
        val: str
        line: int

else:
    from collections import namedtuple

    _ItemFields = namedtuple("_ItemFields", "typ pos val line")

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


class Item(_ItemFields):
    """One token: its type (typ), start offset (pos), text (val) and the line it starts on."""

    __slots__ = ()

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
