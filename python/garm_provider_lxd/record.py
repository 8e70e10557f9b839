"""Immutable records, declared like `typing.NamedTuple` but without importing `typing`.

`typing` (with the `re`, `enum` and `contextlib` it imports) costs more start-up time than the
rest of a provider command's Python, and GARM pays start-up on every runner create and delete.
The type checker sees `typing.NamedTuple` and checks every construction and `_replace` call;
at run time a record is the small class below, which supports exactly the part of the
NamedTuple interface the provider uses: construction (positional or keyword) with class-level
defaults, attribute access, `_fields`, `_replace`, `_asdict`, equality and `repr`. Records are
not tuples at run time: do not index, unpack or iterate them.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:

    class Record:
        """Base of an immutable record whose annotated class attributes are its fields."""

        _fields: tuple[str, ...] = ()
        _required: tuple[str, ...] = ()

        def __init_subclass__(cls) -> None:
            super().__init_subclass__()
            # A class's own annotations (Python >= 3.10); as strings, so nothing is evaluated.
            cls._fields = tuple(cls.__annotations__)
            cls._required = tuple(name for name in cls._fields if name not in cls.__dict__)

        def __init__(self, *args: object, **values: object) -> None:
            if len(args) > len(self._fields):
                raise TypeError(f"{type(self).__name__} takes {len(self._fields)} fields")
            for name, value in zip(self._fields, args, strict=False):
                if name in values:
                    raise TypeError(f"{type(self).__name__} got {name!r} twice")
                values[name] = value
            missing = [name for name in self._required if name not in values]
            if missing:
                raise TypeError(f"{type(self).__name__} needs {', '.join(missing)}")
            self._set(values)

        def _set(self, values: dict[str, object]) -> None:
            for name, value in values.items():
                if name not in self._fields:
                    raise TypeError(f"{type(self).__name__} has no field {name!r}")
                object.__setattr__(self, name, value)

        def __setattr__(self, name: str, value: object) -> None:
            raise AttributeError(f"{type(self).__name__} is immutable")

        def __delattr__(self, name: str) -> None:
            raise AttributeError(f"{type(self).__name__} is immutable")

        def _replace(self, **changes: object) -> Record:
            copy = object.__new__(type(self))
            copy.__dict__.update(self.__dict__)
            copy._set(changes)
            return copy

        def _asdict(self) -> dict[str, object]:
            return {name: getattr(self, name) for name in self._fields}

        def __eq__(self, other: object) -> bool:
            if type(other) is not type(self):
                return NotImplemented
            return self._asdict() == other._asdict()

        def __hash__(self) -> int:
            return hash(tuple(self._asdict().values()))

        def __repr__(self) -> str:
            fields = ", ".join(f"{name}={value!r}" for name, value in self._asdict().items())
            return f"{type(self).__name__}({fields})"


__all__ = ["Record"]
