"""Formatting of single operands with flags, width and precision (Go's fmt/format.go)."""

from __future__ import annotations

from .floats import format_float
from .quote import can_backquote, is_print, quote, quote_rune

_MAX_RUNE = 0x10FFFF


class OutputLimitError(Exception):
    """A formatted string grew past the allowed size."""


class Fmt:
    """The raw formatter: flags, width, precision and the output pieces."""

    __slots__ = (
        "buf",
        "limit",
        "minus",
        "plus",
        "plus_v",
        "prec",
        "prec_present",
        "sharp",
        "sharp_v",
        "size",
        "space",
        "wid",
        "wid_present",
        "zero",
    )

    def __init__(self, limit: int) -> None:
        self.buf: list[str] = []
        self.size = 0
        self.limit = limit
        self.clear_flags()

    def clear_flags(self) -> None:
        """Reset every flag, the width and the precision."""
        self.wid_present = self.prec_present = False
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.plus_v = self.sharp_v = False
        self.wid = self.prec = 0

    def write(self, text: str) -> None:
        """Append text unchanged; raise OutputLimitError past the size limit."""
        self.size += len(text)
        if self.size > self.limit:
            raise OutputLimitError(self.limit)
        self.buf.append(text)

    def text(self) -> str:
        """Return everything formatted so far."""
        return "".join(self.buf)

    def write_padding(self, count: int) -> None:
        """Append count padding characters (zeros only when padding on the left)."""
        if count > 0:
            self.write(("0" if self.zero and not self.minus else " ") * count)

    def pad(self, text: str) -> None:
        """Append text padded to the width on the left, or on the right with '-'."""
        if not self.wid_present or self.wid == 0:
            self.write(text)
            return
        width = self.wid - len(text)
        if self.minus:
            self.write(text)
            self.write_padding(width)
        else:
            self.write_padding(width)
            self.write(text)

    def pad_no_zero(self, text: str) -> None:
        """Pad with spaces even when the zero flag is set."""
        zero, self.zero = self.zero, False
        self.pad(text)
        self.zero = zero

    def fmt_boolean(self, value: bool) -> None:
        """Format a boolean."""
        self.pad("true" if value else "false")

    def fmt_unicode(self, code: int) -> None:
        """Format an integer as U+0078, or with '#' as U+0078 'x'."""
        prec = self.prec if self.prec_present and self.prec > 4 else 4
        text = "U+" + format(code, "X").rjust(prec, "0")
        if self.sharp and code <= _MAX_RUNE and is_print(chr(code)):
            text += " '" + chr(code) + "'"
        self.pad_no_zero(text)

    def fmt_integer(self, value: int, base: int, signed: bool, verb: str, upper: bool) -> None:
        """Format an integer in base 2, 8, 10 or 16 with Go's flag rules."""
        negative = signed and value < 0
        magnitude = -value if negative else value
        prec = 0
        if self.prec_present:
            prec = self.prec
            if prec == 0 and magnitude == 0:
                zero, self.zero = self.zero, False
                self.write_padding(self.wid)
                self.zero = zero
                return
        elif self.zero and not self.minus and self.wid_present:
            prec = self.wid
            if negative or self.plus or self.space:
                prec -= 1
        spec = {10: "d", 16: "X" if upper else "x", 8: "o", 2: "b"}[base]
        digits = format(magnitude, spec)
        if len(digits) < prec:
            digits = "0" * (prec - len(digits)) + digits
        if self.sharp:
            if base == 2:
                digits = "0b" + digits
            elif base == 8 and digits[0] != "0":
                digits = "0" + digits
            elif base == 16:
                digits = ("0X" if upper else "0x") + digits
        if verb == "O":
            digits = "0o" + digits
        if negative:
            digits = "-" + digits
        elif self.plus:
            digits = "+" + digits
        elif self.space:
            digits = " " + digits
        self.pad_no_zero(digits)

    def truncate(self, text: str) -> str:
        """Cut text to the precision, counted in characters."""
        return text[: self.prec] if self.prec_present else text

    def fmt_s(self, text: str) -> None:
        """Format a string."""
        self.pad(self.truncate(text))

    def fmt_sbx(self, data: bytes, upper: bool) -> None:
        """Format bytes as hexadecimal, with ' ' and '#' separating and prefixing."""
        length = len(data)
        if self.prec_present and self.prec < length:
            length = self.prec
        width = 2 * length
        if width <= 0:
            if self.wid_present:
                self.write_padding(self.wid)
            return
        if self.space:
            width = (width * 2 if self.sharp else width) + length - 1
        elif self.sharp:
            width += 2
        if self.wid_present and self.wid > width and not self.minus:
            self.write_padding(self.wid - width)
        prefix = ("0X" if upper else "0x") if self.sharp else ""
        pairs = data[:length].hex()
        if upper:
            pairs = pairs.upper()
        if self.space:
            text = " ".join(prefix + pairs[i : i + 2] for i in range(0, len(pairs), 2))
        else:
            text = prefix + pairs
        self.write(text)
        if self.wid_present and self.wid > width and self.minus:
            self.write_padding(self.wid - width)

    def fmt_q(self, text: str) -> None:
        """Format a string as a quoted Go string (or a raw one with '#')."""
        text = self.truncate(text)
        if self.sharp and can_backquote(text):
            self.pad("`" + text + "`")
            return
        self.pad(quote(text, ascii_only=self.plus))

    def fmt_c(self, code: int) -> None:
        """Format an integer as the character it encodes."""
        if code < 0 or code > _MAX_RUNE or 0xD800 <= code <= 0xDFFF:
            code = 0xFFFD
        self.pad(chr(code))

    def fmt_qc(self, code: int) -> None:
        """Format an integer as a quoted Go character literal."""
        if code < 0 or code > _MAX_RUNE:
            code = 0xFFFD
        self.pad(quote_rune(code, ascii_only=self.plus))

    def fmt_float(self, value: float, verb: str, prec: int) -> None:
        """Format a float with strconv verb and default precision prec."""
        if self.prec_present:
            prec = self.prec
        num = format_float(value, verb, prec)
        if num[0] not in "+-":
            num = "+" + num
        if self.space and num[0] == "+" and not self.plus:
            num = " " + num[1:]
        if num[1] in "IN":
            if num[1] == "N" and not self.space and not self.plus:
                num = num[1:]
            self.pad_no_zero(num)
            return
        if self.sharp and verb != "b":
            num = _keep_point(num, verb, prec)
        if self.plus or num[0] != "+":
            if self.zero and not self.minus and self.wid_present and self.wid > len(num):
                self.write(num[0])
                self.write_padding(self.wid - len(num))
                self.write(num[1:])
                return
            self.pad(num)
            return
        self.pad(num[1:])


def _keep_point(num: str, verb: str, prec: int) -> str:
    """Apply the '#' flag to a formatted float: force a point, keep trailing zeros."""
    digits = (6 if prec == -1 else prec) if verb in "vgGx" else 0
    tail = ""
    has_point = saw_nonzero = False
    index = 1
    while index < len(num):
        char = num[index]
        if char == ".":
            has_point = True
        elif char in "pP" or (char in "eE" and verb not in "xX"):
            tail, num = num[index:], num[:index]
            break
        else:
            saw_nonzero = saw_nonzero or char != "0"
            if saw_nonzero:
                digits -= 1
        index += 1
    if not has_point:
        if len(num) == 2 and num[1] == "0":
            digits -= 1
        num += "."
    return num + "0" * max(digits, 0) + tail
