"""Printing one operand with a verb, as Go's fmt printArg and printValue do."""

from __future__ import annotations

from .format import Fmt
from .values import (
    NO_VALUE,
    Byte,
    GoStruct,
    element_type,
    go_bytes,
    go_string,
    go_type,
    sorted_items,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

_MASK64 = (1 << 64) - 1


class ValuePrinter:
    """Printer state for one call: the formatter."""

    def __init__(self, limit: int) -> None:
        self.fmt = Fmt(limit)

    def bad_verb(self, verb: str, value: object) -> None:
        """Print the %!verb(type=value) error form."""
        self.fmt.write("%!" + verb + "(")
        if value is None or value is NO_VALUE:
            self.fmt.write("<nil>")
        else:
            self.fmt.write(go_type(value) + "=")
            self.print_value(value, "v", 0)
        self.fmt.write(")")

    def print_arg(self, arg: object, verb: str) -> None:
        """Print one operand with a verb (fmt.printArg)."""
        if arg is None or arg is NO_VALUE:
            if verb in "Tv":
                self.fmt.pad("<nil>")
            else:
                self.bad_verb(verb, None)
        elif verb == "T":
            self.fmt.fmt_s(go_type(arg))
        elif verb in "pw":
            self.bad_verb(verb, arg)
        else:
            self.print_value(arg, verb, 0)

    def print_value(self, value: object, verb: str, depth: int) -> None:
        """Print a value with a verb (fmt.printValue)."""
        fmt = self.fmt
        if value is None:
            fmt.write("interface {}(nil)" if fmt.sharp_v else "<nil>")
        elif isinstance(value, str):
            self.fmt_string(value, verb)
        elif isinstance(value, bool):
            if verb in "tv":
                fmt.fmt_boolean(value)
            else:
                self.bad_verb(verb, value)
        elif isinstance(value, int):
            self.fmt_integer(value, not isinstance(value, Byte), verb)
        elif isinstance(value, float):
            self.fmt_float(value, verb)
        elif isinstance(value, complex):
            self.fmt_complex(value, verb)
        elif isinstance(value, dict):
            self.print_map(value, verb, depth)
        elif isinstance(value, GoStruct):
            self.print_struct(value, verb, depth)
        elif isinstance(value, (list, tuple)):
            self.print_slice(value, verb, depth)
        elif value is NO_VALUE:
            fmt.write("<invalid reflect.Value>" if depth == 0 else "<nil>")
        else:
            fmt.write("?" + type(value).__name__ + "?")

    def fmt_integer(self, value: int, signed: bool, verb: str) -> None:
        """Format an integer for a verb."""
        fmt = self.fmt
        bases = {"d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}
        if verb == "v":
            if fmt.sharp_v and not signed:
                sharp, fmt.sharp = fmt.sharp, True
                fmt.fmt_integer(value, 16, False, "v", False)
                fmt.sharp = sharp
            else:
                fmt.fmt_integer(value, 10, signed, verb, False)
        elif verb in bases:
            fmt.fmt_integer(value, bases[verb], signed, verb, verb == "X")
        elif verb in "cqU":
            code = value & _MASK64
            {"c": fmt.fmt_c, "q": fmt.fmt_qc, "U": fmt.fmt_unicode}[verb](code)
        else:
            self.bad_verb(verb, value)

    def fmt_float(self, value: float, verb: str) -> None:
        """Format a float for a verb."""
        if verb == "v":
            self.fmt.fmt_float(value, "g", -1)
        elif verb in "bgGxX":
            self.fmt.fmt_float(value, verb, -1)
        elif verb in "feE":
            self.fmt.fmt_float(value, verb, 6)
        elif verb == "F":
            self.fmt.fmt_float(value, "f", 6)
        else:
            self.bad_verb(verb, value)

    def fmt_complex(self, value: complex, verb: str) -> None:
        """Format a complex number as (r+ii)."""
        if verb not in "vbgGxXfFeE":
            self.bad_verb(verb, value)
            return
        plus = self.fmt.plus
        self.fmt.write("(")
        self.fmt_float(value.real, verb)
        self.fmt.plus = True
        self.fmt_float(value.imag, verb)
        self.fmt.write("i)")
        self.fmt.plus = plus

    def fmt_string(self, value: str, verb: str) -> None:
        """Format a string for a verb."""
        fmt = self.fmt
        if verb == "v":
            (fmt.fmt_q if fmt.sharp_v else fmt.fmt_s)(value)
        elif verb == "s":
            fmt.fmt_s(value)
        elif verb in "xX":
            fmt.fmt_sbx(go_bytes(value), verb == "X")
        elif verb == "q":
            fmt.fmt_q(value)
        else:
            self.bad_verb(verb, value)

    def print_map(self, value: dict[object, object], verb: str, depth: int) -> None:
        """Print a map in sorted key order."""
        sharp_v = self.fmt.sharp_v
        self.fmt.write(go_type(value) + "{" if sharp_v else "map[")
        for index, (key, item) in enumerate(sorted_items(value)):
            if index:
                self.fmt.write(", " if sharp_v else " ")
            self.print_value(key, verb, depth + 1)
            self.fmt.write(":")
            self.print_value(item, verb, depth + 1)
        self.fmt.write("}" if sharp_v else "]")

    def print_struct(self, value: GoStruct, verb: str, depth: int) -> None:
        """Print a struct."""
        fmt = self.fmt
        if fmt.sharp_v:
            fmt.write(value.type_name)
        fmt.write("{")
        for index, (name, item) in enumerate(value.fields.items()):
            if index:
                fmt.write(", " if fmt.sharp_v else " ")
            if fmt.plus_v or fmt.sharp_v:
                fmt.write(name + ":")
            self.print_value(item, verb, depth + 1)
        fmt.write("}")

    def print_slice(self, value: Sequence[object], verb: str, depth: int) -> None:
        """Print a slice."""
        fmt = self.fmt
        if verb in "sqxX" and value and element_type(value) == "uint8":
            data = bytes(int(b) for b in value)  # type: ignore[call-overload]
            if verb == "s":
                fmt.fmt_s(go_string(data))
            elif verb == "q":
                fmt.fmt_q(go_string(data))
            else:
                fmt.fmt_sbx(data, verb == "X")
            return
        open_, sep, close_ = (go_type(value) + "{", ", ", "}") if fmt.sharp_v else ("[", " ", "]")
        fmt.write(open_)
        for index, item in enumerate(value):
            if index:
                fmt.write(sep)
            self.print_value(item, verb, depth + 1)
        fmt.write(close_)
