"""Float to text conversion as Go's strconv.AppendFloat does it (64-bit floats)."""

from __future__ import annotations

import math

_MASK64 = (1 << 64) - 1


def shortest_digits(value: float) -> tuple[str, int]:
    """Return the shortest decimal digits that round-trip |value| and the decimal point."""
    if value == 0:
        return "", 0
    text = repr(abs(value))
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    combined = whole + fraction
    lead = len(combined) - len(combined.lstrip("0"))
    digits = combined[lead:].rstrip("0")
    return digits, len(whole) + int(exponent or "0") - lead


def _exponent(exp: int) -> str:
    sign = "-" if exp < 0 else "+"
    exp = abs(exp)
    return sign + (f"0{exp}" if exp < 10 else str(exp))


def format_e(digits: str, point: int, prec: int, letter: str) -> str:
    """Format decimal digits as d.ddde±dd with prec fraction digits."""
    text = digits[:1] or "0"
    if prec > 0:
        fraction = digits[1 : 1 + prec]
        text += "." + fraction + "0" * (prec - len(fraction))
    exp = point - 1 if digits else 0
    return text + letter + _exponent(exp)


def format_f(digits: str, point: int, prec: int) -> str:
    """Format decimal digits as ddd.ddd with prec fraction digits."""
    if point > 0:
        head = digits[:point]
        text = head + "0" * (point - len(head))
    else:
        text = "0"
    if prec > 0:
        fraction = "".join(
            digits[j] if 0 <= j < len(digits) else "0" for j in range(point, point + prec)
        )
        text += "." + fraction
    return text


def _bits(value: float) -> tuple[int, int]:
    """Return (mantissa, exponent) with value == mantissa * 2**(exponent - 52)."""
    magnitude = abs(value)
    if magnitude < 2.2250738585072014e-308:
        return int(math.ldexp(magnitude, 1074)), -1022
    fraction, exp = math.frexp(magnitude)
    return int(fraction * 2.0**53), exp - 1


def _format_binary(value: float) -> str:
    mantissa, exp = _bits(value)
    exp -= 52
    return f"{mantissa}p{'+' if exp >= 0 else ''}{exp}"


def _format_hex(value: float, prec: int, letter: str) -> str:
    mantissa, exp = _bits(value)
    if mantissa == 0:
        exp = 0
    mantissa <<= 8
    while mantissa and not mantissa & (1 << 60):
        mantissa <<= 1
        exp -= 1
    if 0 <= prec < 15:
        shift = prec * 4
        extra = (mantissa << shift) & ((1 << 60) - 1)
        mantissa >>= 60 - shift
        if extra | (mantissa & 1) > 1 << 59:
            mantissa += 1
        mantissa <<= 60 - shift
        if mantissa & (1 << 61):
            mantissa >>= 1
            exp += 1
    digits = "0123456789ABCDEF" if letter == "X" else "0123456789abcdef"
    text = "0" + letter + str((mantissa >> 60) & 1)
    mantissa = (mantissa << 4) & _MASK64
    count = prec if prec > 0 else (-1 if prec < 0 and mantissa else 0)
    if count:
        text += "."
        while count > 0 or (count < 0 and mantissa):
            text += digits[(mantissa >> 60) & 15]
            mantissa = (mantissa << 4) & _MASK64
            count -= 1
    text += "P" if letter == "X" else "p"
    text += "-" if exp < 0 else "+"
    return text + str(abs(exp)).rjust(2, "0")


def format_float(value: float, verb: str, prec: int) -> str:
    """Return strconv.FormatFloat(value, verb, prec, 64) for verbs b e E f g G x X."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if verb == "b":
        return sign + _format_binary(value)
    if verb in "xX":
        return sign + _format_hex(value, prec, verb)
    if prec >= 0:
        text = format(value, f".{prec}{verb}")
        return text if text.startswith("-") else sign + text
    digits, point = shortest_digits(value)
    count = len(digits)
    if verb in "eE":
        return sign + format_e(digits, point, max(count - 1, 0), verb)
    if verb == "f":
        return sign + format_f(digits, point, max(count - point, 0))
    exp = point - 1
    if exp < -4 or exp >= 6:
        return sign + format_e(digits, point, count - 1, "e" if verb == "g" else "E")
    return sign + format_f(digits, point, max(count - point, 0))
