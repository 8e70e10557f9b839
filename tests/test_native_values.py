"""The extension's JSON and TOML codecs agree with the standard library's json and tomllib."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import tomllib
from hypothesis import given, settings
from hypothesis import strategies as st

from garm_provider_lxd._native import json_dumps, json_loads, toml_loads

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"

# Everything JSON can carry that round-trips exactly: 64-bit integers, finite floats, any text.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_dumps_reads_back_with_json(value: Any) -> None:
    # repr tells 1 from 1.0 and shows key order, which == would not.
    assert repr(json.loads(json_dumps(value))) == repr(value)


@settings(max_examples=400, deadline=None)
@given(json_values, st.booleans())
def test_loads_matches_json(value: Any, ensure_ascii: bool) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    assert repr(json_loads(text.encode())) == repr(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(), st.integers(), min_size=2))
def test_key_order_is_kept(value: dict[str, int]) -> None:
    data = json.dumps(dict(reversed(value.items()))).encode()
    assert list(json_loads(data)) == list(json.loads(data))
    assert list(json.loads(json_dumps(json_loads(data)))) == list(json.loads(data))


@pytest.mark.parametrize("path", sorted((TESTDATA / "lxd").glob("*.json")), ids=lambda p: p.name)
def test_lxd_responses_load_as_json_does(path: Path) -> None:
    data = path.read_bytes()
    assert repr(json_loads(data)) == repr(json.loads(data))
    assert json.loads(json_dumps(json_loads(data))) == json.loads(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "b": 2, "a": 3}',
        b"[18446744073709551615, -9223372036854775808, 1e300, 5e-324, 0.1]",
        b'"\\u00e9\\ud83d\\ude00 \\" \\\\ \\/ \\b\\f\\n\\r\\t"',
        b' \n\t{"": [], "x": {}}\r\n',
        "caf\u00e9 \u2603".join(['["', '"]']).encode(),
    ],
)
def test_corpus_loads_as_json_does(data: bytes) -> None:
    assert repr(json_loads(data)) == repr(json.loads(data))


def test_output_is_compact_utf8() -> None:
    value = {"b": [True, None, 1, 1.5], "a": ("x", "\u00e9\n"), "c": {}}
    assert json_dumps(value) == b'{"b":[true,null,1,1.5],"a":["x","\xc3\xa9\\n"],"c":{}}'
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json_dumps(value) == compact.encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "EOF while parsing a value at line 1 column 0"),
        (b"[1, 2] x", "trailing characters at line 1 column 8"),
        (b"[1,]", "trailing comma at line 1 column 4"),
        (b"{'a': 1}", "key must be a string at line 1 column 2"),
        (b'"\\x"', "invalid escape at line 1 column 3"),
        (b"\xff", "expected value at line 1 column 1"),
        (b"[" * 100_000, "recursion limit exceeded at line 1 column 128"),
    ],
)
def test_invalid_json_is_a_value_error(data: bytes, message: str) -> None:
    with pytest.raises((ValueError, RecursionError)):
        json.loads(data)
    with pytest.raises(ValueError) as raised:
        json_loads(data)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"NaN", "expected value at line 1 column 1"),
        (b"[Infinity]", "expected value at line 1 column 2"),
        (b"-Infinity", "invalid number at line 1 column 2"),
    ],
)
def test_non_standard_constants_are_refused(data: bytes, message: str) -> None:
    # json.loads accepts these; JSON (and Go's encoding/json, on GARM's side) does not.
    with pytest.raises(ValueError) as raised:
        json_loads(data)
    assert str(raised.value) == message


def self_referential() -> list[object]:
    loop: list[object] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ({1, 2}, TypeError, "Object of type set is not JSON serializable"),
        (b"x", TypeError, "Object of type bytes is not JSON serializable"),
        ([object()], TypeError, "Object of type object is not JSON serializable"),
        ({1: "a"}, TypeError, "keys must be str, not int"),
        ({None: 1}, TypeError, "keys must be str, not NoneType"),
        (math.nan, ValueError, "Out of range float values are not JSON compliant"),
        ([-math.inf], ValueError, "Out of range float values are not JSON compliant"),
        (2**64, ValueError, "int out of range"),
        (-(2**63) - 1, ValueError, "int out of range"),
        (self_referential(), ValueError, "nested too deeply"),
    ],
)
def test_unserializable_values_raise(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        json_dumps(value)


def test_bool_is_checked_before_int() -> None:
    assert json_dumps([True, False, 1, 0]) == b"[true,false,1,0]"


@pytest.mark.parametrize("path", sorted((TESTDATA / "config").glob("*.toml")), ids=lambda p: p.name)
def test_sample_configs_load_as_tomllib_does(path: Path) -> None:
    text = path.read_text()
    assert repr(toml_loads(text)) == repr(tomllib.loads(text))


TOML_DOCUMENT = '''
# comment
title = "x \\u00e9 \\"q\\" \\t"
literal = 'C:\\path\\'
multi = """
a\\
   b"""
raw = \'\'\'
line\'\'\'
ints = [0x1F, 0o17, 0b101, -9_223_372_036_854_775_808, +42]
floats = [1_000.5, 6.626e-34, -0.0, inf, -inf, 1e300]
site."google.com" = true
inline = { z = 1, a = { b = [] } }

[b.c]
d = 1
[a]
e = "f"

[[servers]]
name = "alpha"
[[servers]]
name = "beta"
tags = [["x"], [1, 2.5]]
'''


def test_toml_document_loads_as_tomllib_does() -> None:
    loaded = toml_loads(TOML_DOCUMENT)
    assert repr(loaded) == repr(tomllib.loads(TOML_DOCUMENT))
    keys = ["title", "literal", "multi", "raw", "ints", "floats", "site", "inline", "b", "a"]
    assert list(loaded) == [*keys, "servers"]


def test_toml_nan_is_a_float_nan() -> None:
    assert all(math.isnan(x) for x in toml_loads("n = [nan, +nan, -nan]")["n"])


def test_toml_datetimes_are_their_text() -> None:
    text = "a = 1979-05-27T07:32:00Z\nb = 1979-05-27T00:32:00.999-07:00\n"
    text += "c = 1979-05-27\nd = 07:32:00\n"
    assert toml_loads(text) == {
        "a": "1979-05-27T07:32:00Z",
        "b": "1979-05-27T00:32:00.999-07:00",
        "c": "1979-05-27",
        "d": "07:32:00",
    }


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('a = 1\ntoken = "s3cr3t"\na = 2\n', r"^duplicate key at line 3, column 1$"),
        ("[x]\nkey = s3cr3t\n", r" at line 2, column 7$"),
        ("[x]\n[x]\n", r" at line 2, column \d+$"),
        ('k = "s3cr3t\n', r" at line 1, column \d+$"),
        ("a = [" * 1000, r" at line 1, column \d+$"),
    ],
)
def test_invalid_toml_is_a_one_line_value_error(text: str, where: str) -> None:
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(text)
    with pytest.raises(ValueError, match=where) as raised:
        toml_loads(text)
    assert "\n" not in str(raised.value)
    assert "s3cr3t" not in str(raised.value)
