"""The run-time Record: the part of typing.NamedTuple's behaviour the provider relies on."""

from __future__ import annotations

from typing import Any

import pytest

from garm_provider_lxd.config import Config, ImageRemote
from garm_provider_lxd.record import Record
from garm_provider_lxd.specs import ExtraSpecs


class Point(Record):
    x: int
    y: int = 0
    label: str = "origin"


def test_fields_keep_declaration_order() -> None:
    assert Point._fields == ("x", "y", "label")
    assert Config._fields[:2] == ("unix_socket_path", "url")


def test_defaults_keywords_and_positions() -> None:
    assert Point(1)._asdict() == {"x": 1, "y": 0, "label": "origin"}
    assert Point(1, 2, label="p")._asdict() == {"x": 1, "y": 2, "label": "p"}
    assert ExtraSpecs().profiles is None
    assert ImageRemote(addr="https://images.example").protocol == "simplestreams"


# The type checker refuses these misuses; at run time they must fail just as loudly.
UNCHECKED_POINT: Any = Point


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "needs x"),
        ((1, 2, "a", 4), {}, "takes 3 fields"),
        ((1,), {"x": 2}, "got 'x' twice"),
        ((1,), {"z": 2}, "has no field 'z'"),
    ],
)
def test_wrong_construction_is_a_type_error(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        UNCHECKED_POINT(*args, **kwargs)
    with pytest.raises(TypeError, match="has no field 'z'"):
        UNCHECKED_POINT(1)._replace(z=2)


def test_records_are_immutable() -> None:
    point: Any = Point(1)
    with pytest.raises(AttributeError, match="immutable"):
        point.x = 2
    with pytest.raises(AttributeError, match="immutable"):
        del point.y
    assert point.x == 1


def test_replace_copies_and_leaves_the_original() -> None:
    config = Config(unix_socket_path="/a.socket", project_name="p1")
    changed = config._replace(project_name="p2")
    assert (changed.project_name, changed.unix_socket_path) == ("p2", "/a.socket")
    assert config.project_name == "p1"
    assert type(changed) is Config


def test_equality_hash_repr_and_truth() -> None:
    assert Point(1, 2) == Point(x=1, y=2)
    assert Point(1) != Point(2)
    assert UNCHECKED_POINT(1) != ImageRemote(addr="1")
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert repr(Point(1)) == "Point(x=1, y=0, label='origin')"
    assert ExtraSpecs()  # `specs or ExtraSpecs()` relies on every record being truthy
    with pytest.raises(TypeError):
        hash(ExtraSpecs(config={"a": "b"}))  # like a NamedTuple holding a dict
