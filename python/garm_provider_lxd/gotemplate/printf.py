"""Go's fmt.Sprintf, Sprint and Sprintln over template values (fmt/print.go)."""

from __future__ import annotations

from .printer import ValuePrinter
from .values import NO_VALUE, go_type

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

_MASK64 = (1 << 64) - 1
_TOO_LARGE = 1_000_000


class _Printer(ValuePrinter):
    """A ValuePrinter that also walks a format string."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.reordered = False
        self.good_arg_num = True

    def arg_number(self, arg_num: int, fmt_text: str, i: int, count: int) -> tuple[int, int, bool]:
        """Handle an explicit argument index [n] at position i of the format."""
        if i >= len(fmt_text) or fmt_text[i] != "[":
            return arg_num, i, False
        self.reordered = True
        index, width, ok = _parse_arg_number(fmt_text[i:])
        if ok and 0 <= index < count:
            return index, i + width, True
        self.good_arg_num = False
        return arg_num, i + width, ok

    def do_printf(self, text: str, args: Sequence[object]) -> None:
        """Format args according to text (fmt.doPrintf)."""
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
