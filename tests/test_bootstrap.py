"""GARM's BootstrapInstance is parsed once into a record (no LXD): what it holds, what it refuses.

The user data and the create request both read this record, so a field is checked in one place.
"""

from __future__ import annotations

from typing import Any

import pytest

from garm_provider_lxd.bootstrap import parse_bootstrap
from garm_provider_lxd.errors import InputError


def _boot(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "garm-boot", "os_type": "linux", "image": "debian/12"}
    data.update(fields)
    return {key: value for key, value in data.items() if value is not ...}


def test_the_record_holds_the_shared_fields_and_the_whole_object() -> None:
    data = _boot(arch="arm64", pool_id="p-1", flavor="small", tools=[])
    boot = parse_bootstrap(data)
    assert (boot.name, boot.os_type, boot.arch, boot.pool_id, boot.flavor, boot.image) == (
        "garm-boot",
        "linux",
        "arm64",
        "p-1",
        "small",
        "debian/12",
    )
    assert boot.data is data


def test_absent_optional_fields_take_their_defaults() -> None:
    boot = parse_bootstrap(_boot(arch=None))
    assert (boot.arch, boot.pool_id, boot.flavor) == ("amd64", "", "")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"os_type": "plan9"}, "unsupported OS type: plan9"),
        ({"os_type": ...}, "bootstrap: os_type: missing"),
        ({"arch": "sparc"}, "architecture sparc is not supported"),
        ({"arch": 64}, "bootstrap: arch: expected string, got integer"),
        ({"name": ...}, "bootstrap: name: missing"),
        ({"name": ""}, "bootstrap: name: empty"),
        ({"image": ...}, "bootstrap: image: missing"),
        ({"pool_id": ["p"]}, "bootstrap: pool_id: expected string, got array"),
        ({"flavor": {}}, "bootstrap: flavor: expected string, got object"),
        # The platform is checked first, as the create always did.
        ({"name": ..., "arch": "sparc"}, "architecture sparc is not supported"),
    ],
)
def test_a_bad_field_is_one_input_error(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_bootstrap(_boot(**fields))
    assert str(caught.value) == message
