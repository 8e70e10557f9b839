"""GARM's BootstrapInstance: its fields, and the platform (OS and architecture) it asks for."""

from __future__ import annotations

from .errors import InputError
from .messages import printable
from .record import Record
from .specs import json_type_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# GARM's architecture names → (LXD's architecture, the runner download's). A bootstrap without
# an arch means amd64, as in the Go provider.
ARCHITECTURES = {
    "amd64": ("x86_64", "x64"),
    "arm64": ("aarch64", "arm64"),
    "arm": ("armv7l", "arm"),
}
DEFAULT_ARCH = "amd64"
# GARM's OS types → the runner download's OS names.
OS_TYPES = {"linux": "linux", "windows": "win"}


class Bootstrap(Record):
    """GARM's BootstrapInstance: the fields both the user data and the create request read,
    checked once; the user data's own fields (tools, tokens, URLs, keys) stay in data."""

    name: str
    os_type: str
    arch: str
    pool_id: str
    flavor: str
    image: str
    data: Mapping[str, Any]


def parse_bootstrap(data: Mapping[str, Any]) -> Bootstrap:
    """Check a BootstrapInstance's shared fields; InputError names the first bad one."""
    # In the order the create used to check them: the platform first, then the instance.
    os_type = read_os_type(data)
    arch = read_arch(data)
    return Bootstrap(
        name=string_field(data, "name", required=True),
        os_type=os_type,
        arch=arch,
        pool_id=string_field(data, "pool_id"),
        flavor=string_field(data, "flavor"),
        image=string_field(data, "image", required=True),
        data=data,
    )


def wrong_type(field: str, expected: str, value: object) -> InputError:
    """The error for a bootstrap field of the wrong JSON type."""
    return InputError(f"bootstrap: {field}: expected {expected}, got {json_type_name(value)}")


def string_field(data: Mapping[str, Any], key: str, *, required: bool = False, at: str = "") -> str:
    """A string field ("" when absent or null); a required one must be present and non-empty."""
    value = data.get(key)
    if value is None:
        if required:
            raise InputError(f"bootstrap: {at}{key}: missing")
        return ""
    if not isinstance(value, str):
        raise wrong_type(at + key, "string", value)
    if required and not value:
        raise InputError(f"bootstrap: {at}{key}: empty")
    return value


def read_os_type(bootstrap: Mapping[str, Any]) -> str:
    """The bootstrap's os_type, one of OS_TYPES."""
    value = string_field(bootstrap, "os_type", required=True)
    if value not in OS_TYPES:
        raise InputError(f"unsupported OS type: {printable(value)}")
    return value


def read_arch(bootstrap: Mapping[str, Any]) -> str:
    """The bootstrap's arch, one of ARCHITECTURES (DEFAULT_ARCH when it names none)."""
    value = string_field(bootstrap, "arch") or DEFAULT_ARCH
    if value not in ARCHITECTURES:
        raise InputError(f"architecture {printable(value)} is not supported")
    return value
