"""Extra specs: the Go provider's keys, hand validation, and the JSON schema GARM is given."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garm_provider_lxd.errors import InputError
from garm_provider_lxd.specs import (
    EXTRA_SPECS_SCHEMA,
    SPEC_KEYS,
    ExtraSpecs,
    parse_extra_specs,
    strict_b64decode,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("raw", [None, {}])
def test_no_specs_give_the_go_defaults(raw: object) -> None:
    specs = parse_extra_specs(raw)
    assert specs == ExtraSpecs()
    assert specs.extra_packages == ()
    assert specs.disable_updates is False
    assert specs.enable_boot_debug is False
    assert specs.runner_install_template is None
    assert dict(specs.extra_context) == {}
    assert dict(specs.pre_install_scripts) == {}


def test_every_key_is_parsed() -> None:
    specs = parse_extra_specs(
        {
            "extra_packages": ["jq", "git"],
            "disable_updates": True,
            "enable_boot_debug": True,
            "runner_install_template": b64("#!/bin/bash\necho {{ .RunnerName }}\n"),
            "extra_context": {"GolangDownloadURL": "https://go.dev/dl/x.tar.gz"},
            "pre_install_scripts": {"01-a": b64("#!/bin/sh\ntrue\n")},
        }
    )
    assert specs.extra_packages == ("jq", "git")
    assert specs.disable_updates is True
    assert specs.enable_boot_debug is True
    assert specs.runner_install_template == b"#!/bin/bash\necho {{ .RunnerName }}\n"
    assert dict(specs.extra_context) == {"GolangDownloadURL": "https://go.dev/dl/x.tar.gz"}
    assert dict(specs.pre_install_scripts) == {"01-a": b"#!/bin/sh\ntrue\n"}


BAD_SPECS = [
    ({"disable_updates": "yes"}, "disable_updates: expected boolean, got string"),
    ({"enable_boot_debug": 1}, "enable_boot_debug: expected boolean, got integer"),
    ({"disable_updates": None}, "disable_updates: expected boolean, got null"),
    ({"extra_packages": "jq"}, "extra_packages: expected array, got string"),
    ({"extra_packages": [1, 2]}, "extra_packages[0]: expected string, got integer"),
    ({"extra_packages": ["a", True]}, "extra_packages[1]: expected string, got boolean"),
    ({"extra_context": []}, "extra_context: expected object, got array"),
    ({"extra_context": {"A": 1.5}}, "extra_context.A: expected string, got number"),
    ({"runner_install_template": {}}, "runner_install_template: expected string, got object"),
    ({"pre_install_scripts": {"x": "%%%not base64%%%"}}, "pre_install_scripts.x: not valid base64"),
    ({"pre_install_scripts": {"x": "ZWNobw"}}, "pre_install_scripts.x: not valid base64"),
    ({"pre_install_scripts": {"x": None}}, "pre_install_scripts.x: expected string, got null"),
    ({"no_such_spec": 1}, 'unknown key "no_such_spec"'),
]


@pytest.mark.parametrize(("raw", "message"), BAD_SPECS)
def test_invalid_specs_name_the_key_and_the_problem(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_extra_specs(raw)
    assert str(info.value) == f"extra specs: {message}"


@pytest.mark.parametrize("raw", [[], "x", 3, True])
def test_specs_must_be_an_object(raw: object) -> None:
    with pytest.raises(InputError, match=r"^extra specs: expected object, got "):
        parse_extra_specs(raw)


@pytest.mark.parametrize("name", ["a b", "../etc/passwd", ".hidden", "x;reboot", "", "é"])
def test_pre_install_script_names_are_safe_paths_and_commands(name: str) -> None:
    with pytest.raises(InputError, match="pre_install_scripts") as info:
        parse_extra_specs({"pre_install_scripts": {name: b64("true")}})
    assert "\n" not in str(info.value)


def test_error_messages_stay_on_one_line() -> None:
    with pytest.raises(InputError) as info:
        parse_extra_specs({"bad\nkey": 1})
    assert "\n" not in str(info.value)
    assert "bad\\nkey" in str(info.value)


def test_template_is_base64_or_plain_text() -> None:
    plain = "#!/bin/bash\necho {{ .RunnerName }} $HOME\n"
    assert parse_extra_specs({"runner_install_template": b64(plain)}).runner_install_template == (
        plain.encode()
    )
    assert parse_extra_specs({"runner_install_template": plain}).runner_install_template == (
        plain.encode()
    )
    # Strict base64 of bytes that are not UTF-8 text is taken as text, not decoded.
    assert parse_extra_specs({"runner_install_template": "////"}).runner_install_template == (
        b"////"
    )


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("", b""),
        ("Zg==", b"f"),
        ("Zm8=", b"fo"),
        ("Zm9v", b"foo"),
        ("+/+/", b"\xfb\xff\xbf"),
        ("Zg", None),
        ("Zg=", None),
        ("Zg===", None),
        ("Z===", None),
        ("Zm9v\n", None),
        ("Zm 9v", None),
        ("-_-_", None),
        ("Zm=v", None),
        ("Zé==", None),
    ],
)
def test_strict_base64_is_gos_std_encoding(text: str, decoded: bytes | None) -> None:
    assert strict_b64decode(text) == decoded


def test_schema_lists_exactly_the_parsed_keys() -> None:
    fields = set(ExtraSpecs._fields)
    assert {key.name for key in SPEC_KEYS} == fields
    assert set(EXTRA_SPECS_SCHEMA["properties"]) == fields
    assert EXTRA_SPECS_SCHEMA["additionalProperties"] is False
    assert EXTRA_SPECS_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    json.dumps(EXTRA_SPECS_SCHEMA)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


def ecma_pattern(validator: Any, pattern: str, instance: object, schema: Any) -> Any:
    """JSON schema's `pattern` as ECMA-262 (and Go, which GARM is written in) read it.

    Python's `$` also matches before a final newline; in the other two it is the end of the
    text. The published patterns use `$` only as their last character (or inside a class).
    """
    if isinstance(instance, str):
        end = r"\Z" if pattern.endswith("$") else ""
        if not re.search(pattern.removesuffix("$") + end, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"pattern": ecma_pattern}
)


def schema_accepts(schema: dict[str, Any], value: object) -> bool:
    return bool(EcmaValidator(schema).is_valid(value))


def parser_accepts(raw: object) -> bool:
    try:
        parse_extra_specs(raw)
    except InputError:
        return False
    return True


def test_ecma_pattern_ends_at_the_end_of_the_text() -> None:
    schema = {"type": "string", "pattern": "^a$"}
    assert schema_accepts(schema, "a")
    assert not schema_accepts(schema, "a\n")


# Values of the right type that lie on either side of each rule, and values of every JSON type.
NAMES = st.sampled_from(
    ["a", "web-1", "a.b", "_x", "-x", ".x", "", "@", "@g", "@@g", "a b", "a\n", "é", "x/y"]
) | st.text(max_size=4)
BASE64 = st.sampled_from(
    ["", "Zg==", "Zm8=", "Zm9v", "Zg", "Zg=", "Zg===", "====", "Zm9v\n", "Zm=v", "-_-_", "Zé=="]
) | st.text(alphabet="Zm9v+/= \n", max_size=9)
URLS = st.sampled_from(
    [
        "https://images.example",
        "http://10.0.0.1:8080/streams/v1/",
        "https://[::1]:8443/x?y=1",
        "https://user@h/",
        "https://",
        "https",
        "https:/h",
        "ftp://h",
        "HTTPS://h",
        "https:///x",
        "https://h p",
        "https://h/a b",
        "https://h\n",
        "https://h/\x7f",
        "https://h?x",
    ]
) | st.builds(
    str.__add__,
    st.sampled_from(["http://", "https://", "http:/", ""]),
    st.text(max_size=6),
)
CONFIG_KEYS = st.sampled_from(
    [
        "limits.cpu",
        "user.other",
        "security.nesting",
        "",
        "volatile.eth0.hwaddr",
        "user.runner-pool-id",
        "user.runner",
        "image.os",
        "cloud-init.user-data",
        "user.user-data",
        "user.meta-data",
        "boot.mode",
        "security.secureboot",
        "xvolatile.a",
    ]
) | st.text(max_size=6)


def either(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return right | JSON_VALUES


SPEC_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "extra_packages": st.lists(either(st.text(max_size=3)), max_size=3),
    "disable_updates": st.booleans(),
    "enable_boot_debug": st.booleans(),
    "runner_install_template": st.text(),
    "extra_context": st.dictionaries(st.text(max_size=3), either(st.text(max_size=3)), max_size=3),
    "pre_install_scripts": st.dictionaries(NAMES, either(BASE64), max_size=3),
    "profiles": st.lists(either(NAMES), max_size=3),
    "instance_type": st.sampled_from(["container", "virtual-machine", "vm", "", "Container"]),
    "secure_boot": st.booleans(),
    "project": NAMES,
    "target": NAMES,
    "config": st.dictionaries(CONFIG_KEYS, either(st.text(max_size=3)), max_size=3),
    "devices": st.dictionaries(
        NAMES,
        either(
            st.dictionaries(
                st.sampled_from(["type", "path", "pool", ""]), either(st.text(max_size=3))
            )
        ),
        max_size=2,
    ),
    "ephemeral": st.booleans(),
    "image_remote": st.fixed_dictionaries(
        {},
        optional={
            "addr": either(URLS),
            "protocol": either(st.sampled_from(["simplestreams", "lxd", ""])),
            "public": either(st.booleans()),
            "skip_verify": either(st.booleans()),
            "unknown": JSON_VALUES,
        },
    ),
}
EXTRA_SPECS = st.fixed_dictionaries(
    {},
    optional={name: either(values) for name, values in SPEC_VALUES.items()}
    | {"unknown": JSON_VALUES},
)


def test_generated_specs_cover_every_key() -> None:
    assert set(SPEC_VALUES) == {key.name for key in SPEC_KEYS}


@settings(max_examples=1500, deadline=None)
@given(EXTRA_SPECS)
def test_the_published_schema_accepts_exactly_what_the_parser_accepts(raw: dict[str, Any]) -> None:
    # Exactly, both ways: the schema is what GARM shows people writing a pool's specs. (The
    # pool policy, which depends on the provider config, is applied after parsing and is not
    # part of either; `null`, "no specs", is only ever handled by the parser.)
    assert schema_accepts(EXTRA_SPECS_SCHEMA, raw) == parser_accepts(raw)


@pytest.mark.parametrize(
    "raw",
    [
        {"project": ""},
        {"project": "a b"},
        {"profiles": ["web", "web"]},
        {"profiles": [""]},
        {"target": "@"},
        {"config": {"volatile.eth0.hwaddr": "x"}},
        {"devices": {"a/b": {"type": "disk"}}},
        {"pre_install_scripts": {".hidden": "Zg=="}},
        {"pre_install_scripts": {"a": "Zg"}},
        {"image_remote": {"addr": "https"}},
        {"image_remote": {"addr": "https://"}},
        {"image_remote": {"addr": "https://h p"}},
    ],
)
def test_schema_and_parser_refuse_the_same_specs(raw: dict[str, Any]) -> None:
    assert not parser_accepts(raw)
    assert not schema_accepts(EXTRA_SPECS_SCHEMA, raw)


def test_a_target_group_has_a_name() -> None:
    with pytest.raises(InputError, match="target: expected a cluster member name or @group"):
        parse_extra_specs({"target": "@"})
    assert parse_extra_specs({"target": "@gpu"}).target == "@gpu"


def test_where_the_parser_is_stricter_than_the_schema() -> None:
    # A plain-text template is sent to the instance as UTF-8: a lone surrogate (possible through
    # a JSON escape) cannot be, and JSON schema has no way to say so.
    raw = {"runner_install_template": "echo \ud800"}
    assert schema_accepts(EXTRA_SPECS_SCHEMA, raw)
    assert not parser_accepts(raw)


def test_importing_specs_and_userdata_stays_light() -> None:
    code = (
        "import sys, garm_provider_lxd.specs, garm_provider_lxd.userdata\n"
        "heavy = {'jinja2', 'garm_provider_lxd.gotemplate', 'yaml', 'json'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
