"""Go's fmt.Sprintf, Sprint and Sprintln over template values (fmt/print.go)."""

from __future__ import annotations

from collections.abc import Sequence

from .format import Fmt
from .values import (
    NO_VALUE,
    Byte,
    GoStruct,
    common_type,
    go_bytes,
    go_string,
    go_type,
    sorted_items,
)

_MASK64 = (1 << 64) - 1
_TOO_LARGE = 1_000_000


class _Printer:
    """Printer state for one call: the formatter and the error flag."""

    def __init__(self, limit: int) -> None:
        self.fmt = Fmt(limit)
        self.erroring = False
        self.reordered = False
        self.good_arg_num = True

    def bad_verb(self, verb: str, value: object) -> None:
        self.erroring = True
        self.fmt.write("%!" + verb + "(")
        if value is None or value is NO_VALUE:
            self.fmt.write("<nil>")
        else:
            self.fmt.write(go_type(value) + "=")
            self.print_value(value, "v", 0)
        self.fmt.write(")")
        self.erroring = False

    def print_arg(self, arg: object, verb: str) -> None:
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
        fmt = self.fmt
        if verb in "sqxX" and value and common_type(value) == "uint8":
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

    def arg_number(self, arg_num: int, fmt_text: str, i: int, count: int) -> tuple[int, int, bool]:
        if i >= len(fmt_text) or fmt_text[i] != "[":
            return arg_num, i, False
        self.reordered = True
        index, width, ok = _parse_arg_number(fmt_text[i:])
        if ok and 0 <= index < count:
            return index, i + width, True
        self.good_arg_num = False
        return arg_num, i + width, ok

    def do_printf(self, text: str, args: Sequence[object]) -> None:
        fmt, end, arg_num = self.fmt, len(text), 0
        after_index = False
        i = 0
        while i < end:
            self.good_arg_num = True
            last = i
            i = text.find("%", i)
            if i < 0:
                i = end
            if i > last:
                fmt.write(text[last:i])
            if i >= end:
                break
            i += 1
            fmt.clear_flags()
            while i < end and text[i] in "#0+- ":
                flag = text[i]
                if flag == "#":
                    fmt.sharp = True
                elif flag == "0":
                    fmt.zero = True
                elif flag == "+":
                    fmt.plus = True
                elif flag == "-":
                    fmt.minus = True
                else:
                    fmt.space = True
                i += 1
            arg_num, i, after_index = self.arg_number(arg_num, text, i, len(args))
            if i < end and text[i] == "*":
                i += 1
                fmt.wid, fmt.wid_present, arg_num = _int_from_arg(args, arg_num)
                if not fmt.wid_present:
                    fmt.write("%!(BADWIDTH)")
                if fmt.wid < 0:
                    fmt.wid, fmt.minus, fmt.zero = -fmt.wid, True, False
                after_index = False
            else:
                fmt.wid, fmt.wid_present, i = _parse_num(text, i, end)
                if after_index and fmt.wid_present:
                    self.good_arg_num = False
            if i + 1 < end and text[i] == ".":
                i += 1
                if after_index:
                    self.good_arg_num = False
                arg_num, i, after_index = self.arg_number(arg_num, text, i, len(args))
                if i < end and text[i] == "*":
                    i += 1
                    fmt.prec, fmt.prec_present, arg_num = _int_from_arg(args, arg_num)
                    if fmt.prec < 0:
                        fmt.prec, fmt.prec_present = 0, False
                    if not fmt.prec_present:
                        fmt.write("%!(BADPREC)")
                    after_index = False
                else:
                    fmt.prec, fmt.prec_present, i = _parse_num(text, i, end)
                    if not fmt.prec_present:
                        fmt.prec, fmt.prec_present = 0, True
            if not after_index:
                arg_num, i, after_index = self.arg_number(arg_num, text, i, len(args))
            if i >= end:
                fmt.write("%!(NOVERB)")
                break
            verb = text[i]
            i += 1
            if verb == "%":
                fmt.write("%")
            elif not self.good_arg_num:
                fmt.write("%!" + verb + "(BADINDEX)")
            elif arg_num >= len(args):
                fmt.write("%!" + verb + "(MISSING)")
            else:
                if verb in "vw":
                    fmt.sharp_v, fmt.sharp = fmt.sharp, False
                    fmt.plus_v, fmt.plus = fmt.plus, False
                self.print_arg(args[arg_num], verb)
                arg_num += 1
        if not self.reordered and arg_num < len(args):
            fmt.clear_flags()
            fmt.write("%!(EXTRA ")
            for index, arg in enumerate(args[arg_num:]):
                if index:
                    fmt.write(", ")
                if arg is None or arg is NO_VALUE:
                    fmt.write("<nil>")
                else:
                    fmt.write(go_type(arg) + "=")
                    self.print_arg(arg, "v")
            fmt.write(")")


def _parse_num(text: str, start: int, end: int) -> tuple[int, bool, int]:
    """Parse a decimal width or precision; an absurdly long one consumes the rest."""
    num, present, i = 0, False, start
    while i < end and "0" <= text[i] <= "9":
        if num > _TOO_LARGE:
            return 0, False, end
        num = num * 10 + ord(text[i]) - 48
        present = True
        i += 1
    return num, present, i


def _parse_arg_number(text: str) -> tuple[int, int, bool]:
    """Parse an explicit argument index [n]: index, bytes consumed, ok."""
    if len(text) < 3:
        return 0, 1, False
    close = text.find("]", 1)
    if close < 0:
        return 0, 1, False
    width, ok, next_index = _parse_num(text, 1, close)
    if not ok or next_index != close:
        return 0, close + 1, False
    return width - 1, close + 1, True


def _int_from_arg(args: Sequence[object], arg_num: int) -> tuple[int, bool, int]:
    """Take an integer width or precision from the arguments."""
    if arg_num >= len(args):
        return 0, False, arg_num
    arg = args[arg_num]
    is_int = isinstance(arg, int) and not isinstance(arg, bool)
    num = int(arg) if is_int else 0  # type: ignore[call-overload]
    if not -(1 << 63) <= num < (1 << 63) or not -_TOO_LARGE <= num <= _TOO_LARGE:
        return 0, False, arg_num + 1
    return num, is_int, arg_num + 1


def sprintf(text: str, args: Sequence[object], limit: int) -> str:
    """Format args according to a Go format string (fmt.Sprintf)."""
    printer = _Printer(limit)
    printer.do_printf(text, args)
    return printer.fmt.text()


def sprint(args: Sequence[object], limit: int) -> str:
    """Format args with spaces between operands that are not strings (fmt.Sprint)."""
    printer = _Printer(limit)
    previous_string = False
    for index, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if index and not is_string and not previous_string:
            printer.fmt.write(" ")
        printer.print_arg(arg, "v")
        previous_string = is_string
    return printer.fmt.text()


def sprintln(args: Sequence[object], limit: int) -> str:
    """Format args separated by spaces, with a final newline (fmt.Sprintln)."""
    printer = _Printer(limit)
    for index, arg in enumerate(args):
        if index:
            printer.fmt.write(" ")
        printer.print_arg(arg, "v")
    printer.fmt.write("\n")
    return printer.fmt.text()
