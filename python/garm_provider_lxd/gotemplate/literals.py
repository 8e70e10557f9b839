"""Go literal syntax: string unquoting and number parsing (strconv, parse.newNumber)."""

from __future__ import annotations

from .quote import quote, valid_rune
from .values import go_bytes, go_string

_SYNTAX = "invalid syntax"
_HEX = "0123456789abcdefABCDEF"
_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}
_WIDTHS = {"x": 2, "u": 4, "U": 8}


def unquote_char(text: str, index: int, quote: str) -> tuple[int, bool, int]:
    """Decode one (possibly escaped) character: value, whether multibyte, next index."""
    if index >= len(text):
        raise ValueError(_SYNTAX)
    char = text[index]
    if char == quote and quote in "'\"":
        raise ValueError(_SYNTAX)
    if char >= "\x80":
        return ord(char), True, index + 1
    if char != "\\":
        return ord(char), False, index + 1
    if index + 1 >= len(text):
        raise ValueError(_SYNTAX)
    char = text[index + 1]
    index += 2
    if char in _ESCAPES:
        return _ESCAPES[char], False, index
    if char in _WIDTHS:
        width = _WIDTHS[char]
        digits = text[index : index + width]
        if len(digits) < width or any(d not in _HEX for d in digits):
            raise ValueError(_SYNTAX)
        value = int(digits, 16)
        if char == "x":
            return value, False, index + width
        if not valid_rune(value):
            raise ValueError(_SYNTAX)
        return value, True, index + width
    if "0" <= char <= "7":
        digits = text[index : index + 2]
        if len(digits) < 2 or any(not "0" <= d <= "7" for d in digits):
            raise ValueError(_SYNTAX)
        value = int(char + digits, 8)
        if value > 255:
            raise ValueError(_SYNTAX)
        return value, False, index + 2
    if char in "'\"" and char == quote:
        return ord(char), False, index
    raise ValueError(_SYNTAX)


def unquote(text: str) -> str:
    """Return the value of a double-quoted or raw Go string literal."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in '"`':
        raise ValueError(_SYNTAX)
    body = text[1:-1]
    if text[0] == "`":
        if "`" in body:
            raise ValueError(_SYNTAX)
        return body.replace("\r", "")
    if "\n" in body:
        raise ValueError(_SYNTAX)
    if "\\" not in body and '"' not in body:
        return body
    out = bytearray()
    index = 0
    while index < len(body):
        value, multibyte, index = unquote_char(body, index, '"')
        if value < 0x80 or not multibyte:
            out.append(value)
        else:
            out += go_bytes(chr(value))
    return go_string(bytes(out))


class Number:
    """A number literal stored under every type that can represent it."""

    __slots__ = (
        "complex128",
        "float64",
        "int64",
        "is_complex",
        "is_float",
        "is_int",
        "is_uint",
        "text",
        "uint64",
    )

    def __init__(self, text: str) -> None:
        self.text = text
        self.is_int = self.is_uint = self.is_float = self.is_complex = False
        self.int64 = self.uint64 = 0
        self.float64 = 0.0
        self.complex128 = 0j

    def simplify_complex(self) -> None:
        """Record the real types a complex value with no imaginary part also has."""
        self.is_float = self.complex128.imag == 0
        if self.is_float:
            self.float64 = self.complex128.real
            self._float_to_ints()

    def _float_to_ints(self) -> None:
        value = self.float64
        if value == value and value not in (float("inf"), float("-inf")) and value.is_integer():
            if not self.is_int and -(1 << 63) <= value < (1 << 63):
                self.is_int, self.int64 = True, int(value)
            if not self.is_uint and 0 <= value < (1 << 64):
                self.is_uint, self.uint64 = True, int(value)


def underscore_ok(text: str) -> bool:
    """Report whether underscores only separate digits (Go's strconv.underscoreOK)."""
    saw = "^"
    index = 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    hexa = False
    if len(text) >= 2 and text[0] == "0" and text[1] in "bBoOxX":
        index, saw, hexa = 2, "0", text[1] in "xX"
    for char in text[index:]:
        if "0" <= char <= "9" or (hexa and char in _HEX):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def parse_uint(text: str) -> int | None:
    """Parse like strconv.ParseUint(text, 0, 64); None on any error."""
    if not text:
        return None
    base, body = 10, text
    if text[0] == "0":
        prefix = text[1:2].lower()
        if len(text) >= 3 and prefix in "box" and prefix:
            base, body = {"b": 2, "o": 8, "x": 16}[prefix], text[2:]
        else:
            base, body = 8, text[1:]
    value = 0
    for char in body:
        if char == "_":
            continue
        lowered = char.lower()
        if "0" <= char <= "9":
            digit = ord(char) - 48
        elif "a" <= lowered <= "z" and char.isascii():
            digit = ord(lowered) - 87
        else:
            return None
        if digit >= base:
            return None
        value = value * base + digit
        if value >= 1 << 64:
            return None
    if "_" in body and not underscore_ok(text):
        return None
    return value


def parse_int(text: str) -> int | None:
    """Parse like strconv.ParseInt(text, 0, 64); None on any error."""
    negative = text[:1] == "-"
    magnitude = parse_uint(text[1:] if text[:1] in ("+", "-") else text)
    if magnitude is None:
        return None
    if negative:
        return -magnitude if magnitude <= 1 << 63 else None
    return magnitude if magnitude < 1 << 63 else None


def parse_float(text: str) -> float | None:
    """Parse like strconv.ParseFloat(text, 64); None on a syntax or range error."""
    start = 1 if text[:1] in ("+", "-") else 0
    hexa = text[start : start + 2].lower() == "0x"
    digits = _HEX if hexa else "0123456789"
    index = start + (2 if hexa else 0)
    saw_digit = saw_dot = False
    while index < len(text):
        char = text[index]
        if char == "." and not saw_dot:
            saw_dot = True
        elif char in digits:
            saw_digit = True
        elif char != "_":
            break
        index += 1
    if not saw_digit:
        return None
    if index < len(text) and text[index].lower() == ("p" if hexa else "e"):
        index += 1
        if index < len(text) and text[index] in "+-":
            index += 1
        if index >= len(text) or not "0" <= text[index] <= "9":
            return None
        while index < len(text) and ("0" <= text[index] <= "9" or text[index] == "_"):
            index += 1
    elif hexa:
        return None
    if index != len(text) or ("_" in text and not underscore_ok(text)):
        return None
    clean = text.replace("_", "")
    try:
        value = float.fromhex(clean) if hexa else float(clean)
    except (OverflowError, ValueError):
        return None
    return None if value in (float("inf"), float("-inf")) else value


def _parse_complex(text: str) -> complex:
    body = text[:-1] if text.endswith("i") else ""
    split = max(body.rfind("+"), body.rfind("-"))
    while split > 0 and body[split - 1] in "eEpP":
        split = max(body.rfind("+", 0, split - 1), body.rfind("-", 0, split - 1))
    real = parse_float(body[:split]) if split > 0 else None
    imag = parse_float(body[split:]) if split > 0 else None
    if real is None or imag is None:
        raise ValueError(f"illegal number syntax: {text}")
    return complex(real, imag)


def parse_number(text: str, char_constant: bool = False, is_complex: bool = False) -> Number:
    """Interpret a number token as parse.newNumber does; ValueError carries Go's message."""
    number = Number(text)
    if char_constant:
        value, _, index = unquote_char(text, 1, "'")
        if text[index:] != "'":
            raise ValueError(f"malformed character constant: {text}")
        number.is_int = number.is_uint = number.is_float = True
        number.int64 = number.uint64 = value
        number.float64 = float(value)
        return number
    if is_complex:
        number.complex128 = _parse_complex(text)
        number.is_complex = True
        number.simplify_complex()
        return number
    if text.endswith("i"):
        imag = parse_float(text[:-1])
        if imag is not None:
            number.is_complex, number.complex128 = True, complex(0, imag)
            number.simplify_complex()
            return number
    unsigned, signed = parse_uint(text), parse_int(text)
    if unsigned is not None:
        number.is_uint, number.uint64 = True, unsigned
    if signed is not None:
        number.is_int, number.int64 = True, signed
        if signed == 0:
            number.is_uint, number.uint64 = True, 0
    if number.is_int or number.is_uint:
        number.is_float = True
        number.float64 = float(number.int64 if number.is_int else number.uint64)
    else:
        parsed = parse_float(text)
        if parsed is not None:
            if not any(c in text for c in ".eEpP"):
                raise ValueError(f"integer overflow: {quote(text)}")
            number.is_float, number.float64 = True, parsed
            number._float_to_ints()
    if not (number.is_int or number.is_uint or number.is_float):
        raise ValueError(f"illegal number syntax: {quote(text)}")
    return number
