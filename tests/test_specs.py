"""Extra specs: the Go provider's keys, hand validation, and the JSON schema GARM is given."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

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
KEYS = st.sampled_from([key.name for key in SPEC_KEYS] + ["unknown"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSON_VALUES, max_size=4))
def test_hand_validation_agrees_with_the_published_schema(raw: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_ok = jsonschema.Draft202012Validator(EXTRA_SPECS_SCHEMA).is_valid(raw)
    try:
        parse_extra_specs(raw)
    except InputError:
        parsed = False
    else:
        parsed = True
    # The schema cannot express base64 or script-name rules, so it may accept more.
    assert schema_ok or not parsed
    if schema_ok and not parsed:
        assert "pre_install_scripts" in raw


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
