"""How Python data stands for Go values inside a template.

str, bool, int, float, complex, None (a nil interface), dict (a map), list or tuple
(a slice), GoStruct (a struct with declared fields) and Byte (a uint8, from indexing a
string).  Go strings are byte strings: bytes that are not valid UTF-8 are carried as
the lone surrogates Python's "surrogateescape" error handler uses.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


class GoStruct:
    """A Go struct value: its type name and its declared fields in declaration order."""

    __slots__ = ("fields", "type_name")

    def __init__(self, type_name: str, fields: Mapping[str, object]) -> None:
        self.type_name = type_name
        self.fields: dict[str, object] = dict(fields)

    def __repr__(self) -> str:
        return f"GoStruct({self.type_name!r}, {sorted(self.fields)!r})"


class Byte(int):
    """A Go uint8 (what indexing a string yields)."""

    __slots__ = ()


class NoValue:
    """Go's invalid reflect.Value: a missing map key or an absent pipeline value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = NoValue()
INTERFACE = "interface {}"


def go_type(value: object) -> str:
    """Return the Go type name of a value (as reflect's Type.String prints it)."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Byte):
        return "uint8"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, complex):
        return "complex128"
    if isinstance(value, GoStruct):
        return value.type_name
    if isinstance(value, dict):
        return f"map[{key_type(value)}]{element_type(value)}"
    if isinstance(value, (list, tuple)):
        return "[]" + element_type(value)
    return INTERFACE


# Containers in template data never change while a template runs, so what is costly to
# work out about a big one (its element types, its sorted entries) is worked out once per
# render and kept here, with the container itself so that its id stays its own.
_CACHE_MIN = 8
_TYPES: dict[int, tuple[object, str, str]] = {}
_SORTED: dict[int, tuple[object, list[tuple[object, object]]]] = {}
_WEIGHTS: dict[int, tuple[object, int]] = {}
_CHARS_PER_UNIT = 64


def _types(container: dict[object, object] | Sequence[object]) -> tuple[str, str]:
    """Return (key type, element type) of a container, cached for big ones."""
    entry = _TYPES.get(id(container))
    if entry is not None and entry[0] is container:
        return entry[1], entry[2]
    if isinstance(container, dict):
        types = common_type(container.keys()), common_type(container.values())
    else:
        types = "int", common_type(container)
    if len(container) >= _CACHE_MIN:
        _TYPES[id(container)] = (container, *types)
    return types


def key_type(mapping: dict[object, object]) -> str:
    """Return the key type of a map."""
    return _types(mapping)[0]


def element_type(container: dict[object, object] | Sequence[object]) -> str:
    """Return the element type of a map or slice."""
    return _types(container)[1]


def clear_caches() -> None:
    """Forget what was worked out about containers (at the end of each render)."""
    _TYPES.clear()
    _SORTED.clear()
    _WEIGHTS.clear()


def weight(value: object) -> int:
    """Estimate the work of formatting a value: a unit per element, per 64 ASCII characters
    and per character of other text (which is formatted character by character)."""
    if isinstance(value, str):
        return 1 + (len(value) // _CHARS_PER_UNIT if value.isascii() else len(value))
    if isinstance(value, GoStruct):
        return 1 + sum(weight(field) for field in value.fields.values())
    if not isinstance(value, (dict, list, tuple)):
        return 1
    entry = _WEIGHTS.get(id(value))
    if entry is not None and entry[0] is value:
        return entry[1]
    if isinstance(value, dict):
        total = 1 + sum(weight(key) + weight(item) for key, item in value.items())
    else:
        total = 1 + sum(weight(item) for item in value)
    if len(value) >= _CACHE_MIN:
        _WEIGHTS[id(value)] = (value, total)
    return total


def common_type(values: Iterable[object]) -> str:
    """Return the element type of a container: the one type all share, else interface."""
    found = ""
    for value in values:
        if value is None:
            return INTERFACE
        kind = go_type(value)
        if not found:
            found = kind
        elif kind != found:
            return INTERFACE
    return found or "string"


def zero_like(value: object) -> object:
    """Return the zero value of the type of value."""
    if isinstance(value, str):
        return ""
    if isinstance(value, bool):
        return False
    if isinstance(value, Byte):
        return Byte(0)
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        return 0.0
    if isinstance(value, complex):
        return 0j
    if isinstance(value, GoStruct):
        return GoStruct(value.type_name, {k: zero_like(v) for k, v in value.fields.items()})
    if isinstance(value, dict):
        return {}
    if isinstance(value, (list, tuple)):
        return []
    return None


def zero_element(mapping: dict[object, object]) -> object:
    """Return the zero value of a map's element type."""
    if element_type(mapping) == INTERFACE:
        return None
    for value in mapping.values():
        return zero_like(value)
    return ""


def accepts_string_key(mapping: dict[object, object]) -> bool:
    """Report whether a string is assignable to the map's key type."""
    return key_type(mapping) in ("string", INTERFACE)


def is_true(value: object) -> bool:
    """Report Go's truth of a value: not the zero value of its type."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, (bool, int, float, complex)):
        return bool(value)
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return True


def go_bytes(text: str) -> bytes:
    """Return the bytes of a Go string."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        cleaned = "".join(
            "\ufffd" if "\ud800" <= c <= "\udfff" and not "\udc80" <= c <= "\udcff" else c
            for c in text
        )
        return cleaned.encode("utf-8", "surrogateescape")


def go_string(raw: bytes) -> str:
    """Return the Go string holding these bytes."""
    return raw.decode("utf-8", "surrogateescape")


def byte_len(text: str) -> int:
    """Return the length of a Go string in bytes."""
    return len(text) if text.isascii() else len(go_bytes(text))


def _key(value: object) -> tuple[object, ...]:
    """Order map keys as Go's fmtsort does for keys of one type."""
    if isinstance(value, str):
        return ("string", go_bytes(value))
    if isinstance(value, float):
        return ("float64", value == value, value if value == value else 0.0)
    if isinstance(value, complex):
        return ("complex128", _key(value.real), _key(value.imag))
    if isinstance(value, (bool, int)):
        return (go_type(value), int(value))
    return (go_type(value), 0)


def _first(item: tuple[object, object]) -> str:
    return item[0]  # type: ignore[return-value]


def sorted_items(mapping: dict[object, object]) -> list[tuple[object, object]]:
    """Return a map's entries in Go's sorted key order (sorted once per render)."""
    entry = _SORTED.get(id(mapping))
    if entry is not None and entry[0] is mapping:
        return entry[1]
    if all(isinstance(key, str) and key.isascii() for key in mapping):
        items = sorted(mapping.items(), key=_first)  # ASCII text sorts as its bytes do
    else:
        items = sorted(mapping.items(), key=lambda item: _key(item[0]))
    if len(mapping) >= _CACHE_MIN:
        _SORTED[id(mapping)] = (mapping, items)
    return items
