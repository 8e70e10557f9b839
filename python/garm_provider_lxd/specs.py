"""Pool extra specs: the Go provider's schema, validated by hand from one table."""

from __future__ import annotations

import binascii

from .config import (
    IMAGE_REMOTE_KEYS,
    INSTANCE_TYPES,
    ImageRemote,
    image_remote_schema,
    parse_image_remote,
)
from .errors import InputError
from .messages import printable
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

_LETTERS_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_B64_ALPHABET = frozenset((_LETTERS_DIGITS + "+/").encode())
_SCRIPT_NAME_CHARS = frozenset(_LETTERS_DIGITS + "._-")


# A record rather than a dataclass: `dataclasses` imports `inspect` and `typing`, a start-up
# cost paid on every runner create and delete (see record.py). The dict defaults are never
# mutated.
class ExtraSpecs(Record):
    """Validated extra specs of a pool; every field has the Go provider's default."""

    extra_packages: tuple[str, ...] = ()
    disable_updates: bool = False
    enable_boot_debug: bool = False
    runner_install_template: bytes | None = None
    extra_context: Mapping[str, str] = {}
    pre_install_scripts: Mapping[str, bytes] = {}
    # Per-pool LXD settings; None means "as the provider config says".
    profiles: tuple[str, ...] | None = None
    instance_type: str | None = None
    secure_boot: bool | None = None
    project: str | None = None
    target: str | None = None
    config: Mapping[str, str] = {}
    devices: Mapping[str, Mapping[str, str]] = {}
    ephemeral: bool | None = None
    image_remote: ImageRemote | None = None


def json_type_name(value: object) -> str:
    """Name the JSON type of a decoded value the way JSON schema does."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _fail(path: str, problem: str) -> InputError:
    return InputError(f"extra specs: {path}: {problem}")


def _wrong_type(path: str, expected: str, value: object) -> InputError:
    return _fail(path, f"expected {expected}, got {json_type_name(value)}")


def _as_str(path: str, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong_type(path, "string", value)
    return value


def _as_list(path: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise _wrong_type(path, "array", value)
    return value


def _as_dict(path: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(path, "object", value)
    return value


def strict_b64decode(text: str) -> bytes | None:
    """Decode standard, padded base64 (Go's StdEncoding); None when it is not exactly that."""
    data = text.encode("ascii", "replace")
    if len(data) % 4:
        return None
    body = data.rstrip(b"=")
    if len(data) - len(body) > 2 or not _B64_ALPHABET.issuperset(body):
        return None
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        return None


def _parse_bool(path: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(path, "boolean", value)
    return value


def _parse_string_list(path: str, value: object) -> tuple[str, ...]:
    items = _as_list(path, value)
    return tuple(_as_str(f"{path}[{index}]", item) for index, item in enumerate(items))


def _parse_string_map(path: str, value: object) -> dict[str, str]:
    items = _as_dict(path, value)
    return {key: _as_str(f"{path}.{printable(key)}", item) for key, item in items.items()}


def _parse_scripts(path: str, value: object) -> dict[str, bytes]:
    decoded: dict[str, bytes] = {}
    for name, text in _parse_string_map(path, value).items():
        # The name becomes a path under /garm-pre-install and a runcmd command line.
        if not name or name.startswith(".") or not _SCRIPT_NAME_CHARS.issuperset(name):
            raise _fail(f"{path}.{printable(name)}", "use only letters, digits, '.', '_', '-'")
        data = strict_b64decode(text)
        if data is None:
            raise _fail(f"{path}.{printable(name)}", "not valid base64")
        decoded[name] = data
    return decoded


def _parse_template(path: str, value: object) -> bytes:
    # Go sends []byte as base64, while people write the template as plain text: anything
    # that is not strict base64 of UTF-8 text is taken as the template itself.
    text = _as_str(path, value)
    data = strict_b64decode(text)
    if data is not None:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = None
    if data is not None:
        return data
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(path, "not valid UTF-8 text") from None


# Instance config keys a pool may not set: the provider owns them (tags, user data) or LXD does.
_RESERVED_CONFIG_PREFIXES = ("volatile.", "user.runner-", "cloud-init.", "image.")
_RESERVED_CONFIG_KEYS = frozenset(
    {"user.user-data", "user.vendor-data", "user.network-config", "user.meta-data"}
    | {"user.os-type", "user.os-arch", "boot.mode", "security.secureboot"}
)
_NAME_CHARS = frozenset(_LETTERS_DIGITS + "-_.")


def _parse_name(path: str, value: object) -> str:
    text = _as_str(path, value)
    if not text or not _NAME_CHARS.issuperset(text):
        raise _fail(path, "expected a name of letters, digits, '-', '_' or '.'")
    return text


def _parse_profiles(path: str, value: object) -> tuple[str, ...]:
    names = _parse_string_list(path, value)
    for index, name in enumerate(names):
        _parse_name(f"{path}[{index}]", name)
    if len(set(names)) != len(names):
        raise _fail(path, "a profile is listed twice")
    return names


def _parse_instance_type(path: str, value: object) -> str:
    text = _as_str(path, value)
    if text not in INSTANCE_TYPES:
        raise _fail(path, f"expected container or virtual-machine, got {printable(text)!r}")
    return text


def _parse_target(path: str, value: object) -> str:
    text = _as_str(path, value)
    group = text.removeprefix("@")
    if not group or not _NAME_CHARS.issuperset(group):
        raise _fail(path, "expected a cluster member name or @group")
    return text


def _parse_instance_config(path: str, value: object) -> dict[str, str]:
    config = _parse_string_map(path, value)
    for key in config:
        if key in _RESERVED_CONFIG_KEYS or key.startswith(_RESERVED_CONFIG_PREFIXES):
            raise _fail(f"{path}.{printable(key)}", "this key is set by the provider or LXD")
    return config


def _parse_devices(path: str, value: object) -> dict[str, dict[str, str]]:
    devices = _as_dict(path, value)
    parsed: dict[str, dict[str, str]] = {}
    for name, device in devices.items():
        device_path = f"{path}.{printable(name)}"
        _parse_name(device_path, name)
        parsed[name] = _parse_string_map(device_path, device)
        if "type" not in parsed[name]:
            raise _fail(device_path, 'a device needs a "type"')
    return parsed


def _parse_image_remote(path: str, value: object) -> ImageRemote:
    entry = _as_dict(path, value)
    unknown = sorted(set(entry) - set(IMAGE_REMOTE_KEYS))
    if unknown:
        raise _fail(path, f'unknown key "{printable(unknown[0])}"')
    return parse_image_remote(entry, lambda key, problem: _fail(f"{path}.{key}", problem))


class SpecKey(Record):
    """One accepted extra-specs key: its name, JSON schema and parser (see ExtraSpecs)."""

    name: str
    schema: Mapping[str, Any]
    parse: Callable[[str, object], object]


# The schemas below say in JSON schema what the parsers above check by hand (no `re` on the
# command path); tests/test_specs.py holds them to agreeing on generated specs. A pattern's `$`
# means the end of the text, as in ECMA-262 and Go.
_NAME_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9._-]+$"}
_B64_STRING = {
    "type": "string",
    "contentEncoding": "base64",
    "pattern": "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
}
_RESERVED_CONFIG_SCHEMA = {
    "anyOf": [
        {"enum": sorted(_RESERVED_CONFIG_KEYS)},
        *({"pattern": "^" + prefix.replace(".", "\\.")} for prefix in _RESERVED_CONFIG_PREFIXES),
    ]
}

SPEC_KEYS: tuple[SpecKey, ...] = (
    SpecKey(
        "extra_packages",
        {
            "type": "array",
            "items": {"type": "string"},
            "description": "Packages cloud-init installs on the instance.",
        },
        _parse_string_list,
    ),
    SpecKey(
        "disable_updates",
        {"type": "boolean", "description": "Skip the package upgrade when cloud-init runs."},
        _parse_bool,
    ),
    SpecKey(
        "enable_boot_debug",
        {"type": "boolean", "description": "Run the runner install script with set -x."},
        _parse_bool,
    ),
    SpecKey(
        "runner_install_template",
        {
            "type": "string",
            "description": "Go text/template of the install script, base64 or plain text.",
        },
        _parse_template,
    ),
    SpecKey(
        "extra_context",
        {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Extra values the install template sees as .ExtraContext.",
        },
        _parse_string_map,
    ),
    SpecKey(
        "pre_install_scripts",
        {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]*$"},
            "additionalProperties": _B64_STRING,
            "description": "Base64 scripts run in name order before the runner is installed.",
        },
        _parse_scripts,
    ),
    SpecKey(
        "profiles",
        {
            "type": "array",
            "items": _NAME_SCHEMA,
            "uniqueItems": True,
            "description": "Profiles for the instance, in order; replaces the pool's flavor.",
        },
        _parse_profiles,
    ),
    SpecKey(
        "instance_type",
        {"type": "string", "enum": list(INSTANCE_TYPES)},
        _parse_instance_type,
    ),
    SpecKey(
        "secure_boot",
        {"type": "boolean", "description": "UEFI secure boot for virtual machines."},
        _parse_bool,
    ),
    SpecKey(
        "project",
        {**_NAME_SCHEMA, "description": "LXD project of this pool's instances."},
        _parse_name,
    ),
    SpecKey(
        "target",
        {
            "type": "string",
            "pattern": "^@?[A-Za-z0-9._-]+$",
            "description": "Cluster member, or @group, to place instances on.",
        },
        _parse_target,
    ),
    SpecKey(
        "config",
        {
            "type": "object",
            "propertyNames": {"not": _RESERVED_CONFIG_SCHEMA},
            "additionalProperties": {"type": "string"},
            "description": "Instance config keys, e.g. limits.cpu, limits.memory.",
        },
        _parse_instance_config,
    ),
    SpecKey(
        "devices",
        {
            "type": "object",
            "propertyNames": _NAME_SCHEMA,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "required": ["type"],
            },
            "description": "Instance devices, e.g. a root disk size or a NIC on a network.",
        },
        _parse_devices,
    ),
    SpecKey(
        "ephemeral",
        {"type": "boolean", "description": "Delete the instance when it stops."},
        _parse_bool,
    ),
    SpecKey(
        "image_remote",
        {
            **image_remote_schema(),
            "additionalProperties": False,
            "description": (
                "Simplestreams server this pool's image alias is pulled from: one the provider "
                "config declares in [image_remotes], or on a host in [pool_policy] "
                "allow_image_hosts."
            ),
        },
        _parse_image_remote,
    ),
)

_KEYS_BY_NAME = {key.name: key for key in SPEC_KEYS}

EXTRA_SPECS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/cloudbase/garm-provider-lxd/extra-specs.json",
    "title": "garm-provider-lxd extra specs",
    "description": (
        "Per-pool settings. The provider config's [pool_policy] decides which config keys, "
        "device types, projects and image servers a pool may use, so this schema accepts more "
        "than a given provider may allow: CreateInstance and ValidatePoolInfo refuse the rest."
    ),
    "type": "object",
    "properties": {key.name: dict(key.schema) for key in SPEC_KEYS},
    "additionalProperties": False,
}


def parse_extra_specs(raw: object) -> ExtraSpecs:
    """Validate a JSON-decoded extra-specs value (None means none) into ExtraSpecs."""
    if raw is None:
        return ExtraSpecs()
    if not isinstance(raw, dict):
        raise InputError(f"extra specs: expected object, got {json_type_name(raw)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        key = _KEYS_BY_NAME.get(name)
        if key is None:
            raise InputError(f'extra specs: unknown key "{printable(name)}"')
        values[name] = key.parse(name, value)
    return ExtraSpecs(**values)
