"""The builtin template functions (text/template/funcs.go), minus user functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .compare import CallError, fn_eq, fn_ge, fn_gt, fn_le, fn_lt, fn_ne
from .printf import sprint, sprintf, sprintln
from .quote import is_print
from .values import (
    INTERFACE,
    NO_VALUE,
    Byte,
    go_bytes,
    go_string,
    go_type,
    is_true,
    key_type,
    zero_element,
)

# Parameter types of builtins: a reflect.Value (anything, absent values stay absent),
# an interface{} (absent values become nil) or a string.
VALUE = "reflect.Value"
ANY = "interface {}"
STRING = "string"
_INTS = ("int", "uint8")


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


Builtin = Callable[[Sequence[object], int], object]
# name: (fixed parameter types, variadic parameter type or "", implementation)
BUILTINS: dict[str, tuple[tuple[str, ...], str, Builtin | None]] = {
    "and": ((VALUE,), VALUE, None),
    "or": ((VALUE,), VALUE, None),
    "call": ((VALUE,), VALUE, fn_call),
    "html": ((), ANY, fn_html),
    "index": ((VALUE,), VALUE, fn_index),
    "slice": ((VALUE,), VALUE, fn_slice),
    "js": ((), ANY, fn_js),
    "len": ((VALUE,), "", fn_len),
    "not": ((VALUE,), "", fn_not),
    "print": ((), ANY, fn_print),
    "printf": ((STRING,), ANY, fn_printf),
    "println": ((), ANY, fn_println),
    "urlquery": ((), ANY, fn_urlquery),
    "eq": ((VALUE,), VALUE, fn_eq),
    "ne": ((VALUE, VALUE), "", fn_ne),
    "lt": ((VALUE, VALUE), "", fn_lt),
    "le": ((VALUE, VALUE), "", fn_le),
    "gt": ((VALUE, VALUE), "", fn_gt),
    "ge": ((VALUE, VALUE), "", fn_ge),
}
