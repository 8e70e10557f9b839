"""Go string and rune quoting (strconv.Quote, QuoteToASCII, QuoteRune, CanBackquote)."""

from __future__ import annotations

_SIMPLE = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_MAX_RUNE = 0x10FFFF


def valid_rune(code: int) -> bool:
    """Report whether code is a Unicode scalar value (Go's utf8.ValidRune)."""
    return 0 <= code <= _MAX_RUNE and not 0xD800 <= code <= 0xDFFF


def is_print(char: str) -> bool:
    """Report whether a character is printable as Go's unicode.IsPrint defines it."""
    return char.isprintable() and not "\ud800" <= char <= "\udfff"


def _escape_rune(code: int, quote: str, ascii_only: bool) -> str:
    char = chr(code)
    if char in (quote, "\\"):
        return "\\" + char
    if ascii_only:
        if code < 0x80 and is_print(char):
            return char
    elif is_print(char):
        return char
    simple = _SIMPLE.get(char)
    if simple is not None:
        return simple
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if not valid_rune(code):
        code = 0xFFFD
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote(text: str, ascii_only: bool = False) -> str:
    """Return text as a double-quoted Go string literal."""
    if text.isascii():
        if text.isprintable() and '"' not in text and "\\" not in text:
            return '"' + text + '"'
        return '"' + text.translate(_ASCII_QUOTED) + '"'
    out = ['"']
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd" if ascii_only else "\ufffd")
        else:
            out.append(_escape_rune(code, '"', ascii_only))
    out.append('"')
    return "".join(out)


_ASCII_QUOTED = {code: _escape_rune(code, '"', False) for code in range(0x80)}


def quote_rune(code: int, ascii_only: bool = False) -> str:
    """Return a rune as a single-quoted Go character literal."""
    if not valid_rune(code):
        code = 0xFFFD
    return "'" + _escape_rune(code, "'", ascii_only) + "'"


def can_backquote(text: str) -> bool:
    """Report whether text can be a Go raw string literal without change."""
    for char in text:
        if char >= "\x80":
            if char == "\ufeff" or "\ud800" <= char <= "\udfff":
                return False
            continue
        if (char < " " and char != "\t") or char in ("`", "\x7f"):
            return False
    return True
