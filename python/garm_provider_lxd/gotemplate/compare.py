"""The comparison builtins eq, ne, lt, le, gt and ge, with Go's type rules."""

from __future__ import annotations

from collections.abc import Sequence

from .values import NO_VALUE, Byte, GoStruct, go_bytes, go_type


class CallError(Exception):
    """A builtin failed; the message is what Go's function would have returned."""


def _indirect(value: object) -> object:
    return NO_VALUE if value is None else value


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
