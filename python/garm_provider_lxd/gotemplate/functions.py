"""The builtin template functions (text/template/funcs.go), minus user functions.

BUILTINS is the one list of their names: the parser accepts exactly these names as
functions, and the evaluator calls them through it with what each costs in steps.
"""

from __future__ import annotations

from .printf import sprint, sprintf, sprintln
from .quote import is_print
from .values import (
    INTERFACE,
    NO_VALUE,
    Byte,
    GoStruct,
    go_bytes,
    go_string,
    go_type,
    is_true,
    key_type,
    weight,
    zero_element,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

# Parameter types of builtins: a reflect.Value (anything, absent values stay absent),
# an interface{} (absent values become nil) or a string.
VALUE = "reflect.Value"
ANY = "interface {}"
STRING = "string"
_INTS = ("int", "uint8")


class CallError(Exception):
    """A builtin failed; the message is what Go's function would have returned."""


def _indirect(value: object) -> object:
    return NO_VALUE if value is None else value


def _index_arg(index: object, cap: int) -> int:
    index = _indirect(index)
    if index is NO_VALUE:
        raise CallError("cannot index slice/array with nil")
    if not isinstance(index, int) or isinstance(index, bool):
        raise CallError(f"cannot index slice/array with type {go_type(index)}")
    if index < 0 or index > cap:
        raise CallError(f"index out of range: {index}")
    return index


def fn_index(args: Sequence[object], limit: int) -> object:
    """index x 1 2 is x[1][2]: maps, slices and strings."""
    item = _indirect(args[0])
    if item is NO_VALUE:
        raise CallError("index of untyped nil")
    for index in args[1:]:
        index = _indirect(index)
        if item is None:
            raise CallError("index of nil pointer")
        if isinstance(item, (str, list, tuple)):
            data = go_bytes(item) if isinstance(item, str) else item
            position = _index_arg(index, len(data))
            if position == len(data):
                kind = "string" if isinstance(item, str) else "slice"
                raise CallError(f"reflect: {kind} index out of range")
            item = Byte(data[position]) if isinstance(data, bytes) else data[position]
        elif isinstance(item, dict):
            item = _map_index(item, index)
        else:
            raise CallError(f"can't index item of type {go_type(item)}")
    return item


def _map_index(mapping: dict[object, object], key: object) -> object:
    wanted = key_type(mapping)
    if key is NO_VALUE:
        if wanted != INTERFACE:
            raise CallError(f"value is nil; should be of type {wanted}")
        key = None
    elif wanted not in (INTERFACE, go_type(key)) and not (
        wanted in _INTS and go_type(key) in _INTS
    ):
        raise CallError(f"value has type {go_type(key)}; should be {wanted}")
    try:
        if key in mapping:
            return mapping[key]
    except TypeError:
        raise CallError(f"runtime error: hash of unhashable type {go_type(key)}") from None
    return zero_element(mapping)


def fn_slice(args: Sequence[object], limit: int) -> object:
    """slice x 1 2 is x[1:2]; strings slice by bytes."""
    item = _indirect(args[0])
    indexes = args[1:]
    if item is NO_VALUE:
        raise CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise CallError("cannot 3-index slice a string")
        data: bytes | Sequence[object] = go_bytes(item)
    elif isinstance(item, (list, tuple)):
        data = item
    else:
        raise CallError(f"can't slice item of type {go_type(item)}")
    bounds = [0, len(data)]
    for position, index in enumerate(indexes):
        value = _index_arg(index, len(data))
        bounds[position : position + 1] = [value]
    if bounds[0] > bounds[1]:
        raise CallError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indexes) == 3 and bounds[1] > bounds[2]:
        raise CallError(f"invalid slice index: {bounds[1]} > {bounds[2]}")
    part = data[bounds[0] : bounds[1]]
    return go_string(part) if isinstance(part, bytes) else list(part)


def fn_len(args: Sequence[object], limit: int) -> object:
    """len x: the length of a string (in bytes), slice or map."""
    item = args[0]
    if item is None:
        raise CallError("len of nil pointer")
    if item is NO_VALUE:
        raise CallError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str):
        return len(go_bytes(item))
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise CallError(f"len of type {go_type(item)}")


def fn_not(args: Sequence[object], limit: int) -> object:
    """not x: the boolean negation of x's truth."""
    return not is_true(args[0])


def _eval_args(args: Sequence[object], limit: int) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    shown = ["<no value>" if a is None or a is NO_VALUE else a for a in args]
    return sprint(shown, limit)


_HTML = str.maketrans(
    {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
)
_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E"}
_JS.update({"&": "\\u0026", "=": "\\u003D"})
_URL_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")


def fn_html(args: Sequence[object], limit: int) -> object:
    """html x: x's text with HTML special characters escaped."""
    return _eval_args(args, limit).translate(_HTML)


def _js_char(char: str) -> str:
    if char in _JS:
        return _JS[char]
    if char < " ":
        return f"\\u00{ord(char):02X}"
    if char >= "\x80" and not ("\udc80" <= char <= "\udcff" or is_print(char)):
        return f"\\u{ord(char):04X}"
    return char


_JS_ASCII = {code: _js_char(chr(code)) for code in range(0x80)}


def fn_js(args: Sequence[object], limit: int) -> object:
    """js x: x's text escaped for a JavaScript string."""
    text = _eval_args(args, limit)
    if text.isascii():
        return text.translate(_JS_ASCII)
    return "".join(_js_char(c) for c in text)


_URL_ESCAPED = [
    chr(byte) if byte in _URL_SAFE else "+" if byte == 0x20 else f"%{byte:02X}"
    for byte in range(256)
]


def fn_urlquery(args: Sequence[object], limit: int) -> object:
    """urlquery x: x's text escaped for a URL query (spaces become '+')."""
    return "".join(map(_URL_ESCAPED.__getitem__, go_bytes(_eval_args(args, limit))))


def fn_print(args: Sequence[object], limit: int) -> object:
    """print: fmt.Sprint."""
    return sprint(args, limit)


def fn_printf(args: Sequence[object], limit: int) -> object:
    """printf: fmt.Sprintf."""
    return sprintf(str(args[0]), args[1:], limit)


def fn_println(args: Sequence[object], limit: int) -> object:
    """println: fmt.Sprintln."""
    return sprintln(args, limit)


def fn_call(args: Sequence[object], limit: int) -> object:
    """call: there are no functions in template data, so every call fails."""
    name, function = args[0], _indirect(args[1])
    if function is NO_VALUE:
        raise CallError("call of nil")
    raise CallError(f"non-function {name} of type {go_type(function)}")


# -- comparisons: eq, ne, lt, le, gt and ge, with Go's type rules ------------------------


def _kind(value: object) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Byte):
        return "uint"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, complex):
        return "complex"
    return ""


def _comparable(value: object) -> bool:
    if isinstance(value, (dict, list, tuple)):
        return False
    if isinstance(value, GoStruct):
        return all(_comparable(v) for v in value.fields.values())
    return True


def _same(left: object, right: object) -> bool:
    if go_type(left) != go_type(right):
        return False
    if isinstance(left, GoStruct) and isinstance(right, GoStruct):
        return all(_same(v, right.fields[k]) for k, v in left.fields.items())
    return left == right


def _composite_kind(value: object) -> str:
    if value is NO_VALUE:
        return "invalid"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, (list, tuple)):
        return "slice"
    return "struct" if isinstance(value, GoStruct) else "other"


def _equal(left: object, right: object) -> bool:
    kind_left, kind_right = _kind(left), _kind(right)
    if kind_left != kind_right:
        if {kind_left, kind_right} == {"int", "uint"}:
            return left == right
        if left is not NO_VALUE and right is not NO_VALUE:
            raise CallError("incompatible types for comparison")
        return False
    if kind_left:
        return left == right
    composite_left, composite_right = _composite_kind(left), _composite_kind(right)
    if composite_left != composite_right and "invalid" not in (composite_left, composite_right):
        raise CallError(f"non-comparable types {go_type(left)}, {go_type(right)}")
    if "invalid" in (composite_left, composite_right):
        return composite_left == composite_right
    if not _comparable(right):
        raise CallError(f"non-comparable type {go_type(right)}")
    return _same(left, right)


def fn_eq(args: Sequence[object], limit: int) -> object:
    """eq a b c: a == b || a == c."""
    first = _indirect(args[0])
    if len(args) < 2:
        raise CallError("missing argument for comparison")
    return any(_equal(first, _indirect(arg)) for arg in args[1:])


def fn_ne(args: Sequence[object], limit: int) -> object:
    """ne a b: a != b."""
    return not fn_eq(args, limit)


def fn_lt(args: Sequence[object], limit: int) -> bool:
    """lt a b: a < b for basic types of one kind (signed and unsigned mix)."""
    left, right = _indirect(args[0]), _indirect(args[1])
    kind_left, kind_right = _kind(left), _kind(right)
    if not kind_left or not kind_right:
        raise CallError("invalid type for comparison")
    if kind_left != kind_right:
        if {kind_left, kind_right} == {"int", "uint"}:
            return bool(left < right)  # type: ignore[operator]
        raise CallError("incompatible types for comparison")
    if kind_left in ("bool", "complex"):
        raise CallError("invalid type for comparison")
    if kind_left == "string":
        return go_bytes(left) < go_bytes(right)  # type: ignore[arg-type]
    return bool(left < right)  # type: ignore[operator]


def fn_le(args: Sequence[object], limit: int) -> object:
    """le a b: a <= b."""
    return fn_lt(args, limit) or bool(fn_eq(args, limit))


def fn_gt(args: Sequence[object], limit: int) -> object:
    """gt a b: a > b."""
    return not fn_le(args, limit)


def fn_ge(args: Sequence[object], limit: int) -> object:
    """ge a b: a >= b."""
    return not fn_lt(args, limit)


# What a builtin costs in steps: formatting functions the weight of their arguments
# (values.weight), the others the characters of their string arguments; every function
# also pays for the string or slice it returns (result_cost).
_INPUT_CHARS_PER_STEP = 64
_OUTPUT_CHARS_PER_STEP = 4
_STEPS_PER_VERB = 3  # each % of a printf format


def _cost_by_weight(args: Sequence[object]) -> int:
    return sum(weight(arg) for arg in args)


def _cost_of_printf(args: Sequence[object]) -> int:
    verbs = args[0].count("%") if isinstance(args[0], str) else 0
    return _cost_by_weight(args) + verbs * _STEPS_PER_VERB


def _cost_by_text(args: Sequence[object]) -> int:
    return sum(len(arg) for arg in args if isinstance(arg, str)) // _INPUT_CHARS_PER_STEP


def result_cost(result: object) -> int:
    """Return the steps a builtin's result costs: its characters, or its elements."""
    if isinstance(result, str):
        return len(result) // _OUTPUT_CHARS_PER_STEP
    if isinstance(result, list):
        return len(result)
    return 0


class Builtin:
    """One builtin: parameter types (fixed, then variadic or ""), implementation, cost."""

    __slots__ = ("cost", "fixed", "run", "variadic")

    def __init__(
        self,
        fixed: tuple[str, ...],
        variadic: str,
        run: Callable[[Sequence[object], int], object] | None,
        cost: Callable[[Sequence[object]], int] = _cost_by_text,
    ) -> None:
        self.fixed = fixed
        self.variadic = variadic
        self.run = run  # None for and and or, which the evaluator short-circuits
        self.cost = cost


BUILTINS: dict[str, Builtin] = {
    "and": Builtin((VALUE,), VALUE, None),
    "or": Builtin((VALUE,), VALUE, None),
    "call": Builtin((VALUE,), VALUE, fn_call),
    "html": Builtin((), ANY, fn_html, _cost_by_weight),
    "index": Builtin((VALUE,), VALUE, fn_index),
    "slice": Builtin((VALUE,), VALUE, fn_slice),
    "js": Builtin((), ANY, fn_js, _cost_by_weight),
    "len": Builtin((VALUE,), "", fn_len),
    "not": Builtin((VALUE,), "", fn_not),
    "print": Builtin((), ANY, fn_print, _cost_by_weight),
    "printf": Builtin((STRING,), ANY, fn_printf, _cost_of_printf),
    "println": Builtin((), ANY, fn_println, _cost_by_weight),
    "urlquery": Builtin((), ANY, fn_urlquery, _cost_by_weight),
    "eq": Builtin((VALUE,), VALUE, fn_eq),
    "ne": Builtin((VALUE, VALUE), "", fn_ne),
    "lt": Builtin((VALUE, VALUE), "", fn_lt),
    "le": Builtin((VALUE, VALUE), "", fn_le),
    "gt": Builtin((VALUE, VALUE), "", fn_gt),
    "ge": Builtin((VALUE, VALUE), "", fn_ge),
}
