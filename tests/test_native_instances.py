"""Instance conversion in the extension, checked against a plain-Python reference."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from garm_provider_lxd._native import LxdTransport, provider_instance, provider_instances
from garm_provider_lxd.errors import LxdError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testdata"))
import gen_instances
from instances_reference import provider_instance as reference_instance
from instances_reference import provider_instances as reference_items

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
LXD_FIXTURES = TESTDATA / "lxd"

# --- instance conversion, checked against a plain-Python reference ----------------------------


def reference_instances(body: bytes, controller_id: str, pool_id: str | None) -> list[Any]:
    """The reference listing over json.loads."""
    return reference_items(json.loads(body)["metadata"], controller_id, pool_id)


def assert_listing_matches(body: bytes, controller_id: str, pool_id: str | None) -> list[Any]:
    """Convert with the extension, compare with the reference, return the result."""
    converted = json.loads(provider_instances(body, controller_id, pool_id))
    assert converted == reference_instances(body, controller_id, pool_id)
    return converted  # type: ignore[no-any-return]


@pytest.mark.parametrize("recursion", [1, 2])
def test_generated_listing_matches_reference(recursion: int) -> None:
    body = json.dumps(gen_instances.generate(600, recursion=recursion, seed=7)).encode()
    pools_a, pools_b = (gen_instances.POOLS[c] for c in gen_instances.CONTROLLERS)
    results = {
        (controller, pool): assert_listing_matches(body, controller, pool)
        for controller, pool in [
            (gen_instances.CONTROLLER_A, None),
            (gen_instances.CONTROLLER_A, pools_a[0]),
            (gen_instances.CONTROLLER_B, None),
            (gen_instances.CONTROLLER_B, pools_b[1]),
            ("no-such-controller", None),
        ]
    }
    everything_a = results[(gen_instances.CONTROLLER_A, None)]
    assert len(everything_a) > len(results[(gen_instances.CONTROLLER_A, pools_a[0])]) > 0
    assert results[("no-such-controller", None)] == []
    statuses = {i["status"] for i in everything_a}
    assert statuses == {"running", "stopped", "error", "unknown"}
    with_addresses = [i for i in everything_a if i["addresses"]]
    assert bool(with_addresses) == (recursion == 2)
    assert all(i["status"] == "running" for i in with_addresses)


@pytest.mark.parametrize("name", ["instances-recursion1.json", "instances-recursion2.json"])
def test_fixture_listings_match_reference(name: str) -> None:
    body = (LXD_FIXTURES / name).read_bytes()
    controllers = {
        i["config"].get("user.runner-controller-id") for i in json.loads(body)["metadata"]
    }
    for controller in controllers - {None}:
        assert assert_listing_matches(body, controller, None)


@pytest.mark.parametrize(
    "state", [None, "instance-state-running.json", "instance-state-stopped.json"]
)
def test_fixture_instance_matches_reference(state: str | None) -> None:
    instance = (LXD_FIXTURES / "instance.json").read_bytes()
    state_body = (LXD_FIXTURES / state).read_bytes() if state else None
    expected = reference_instance(
        json.loads(instance)["metadata"], json.loads(state_body)["metadata"] if state_body else None
    )
    assert json.loads(provider_instance(instance, state_body)) == expected
    assert expected["name"] == "garm-fixture-1"


@pytest.mark.parametrize("query", ["recursion=2", "recursion=1&all-projects=true"])
def test_real_lxd_listing_matches_reference(transport: LxdTransport, query: str) -> None:
    status, body = transport.request("GET", f"/1.0/instances?{query}")
    assert status == 200
    instances = json.loads(body)["metadata"]
    configs = [i.get("config") for i in instances]
    tags = {c.get("user.runner-controller-id") for c in configs if isinstance(c, dict)}
    for controller in {t for t in tags if isinstance(t, str)} | {"no-such-controller"}:
        assert_listing_matches(body, controller, None)


def test_real_lxd_instance_matches_reference(transport: LxdTransport) -> None:
    names = json.loads(transport.request("GET", "/1.0/instances")[1])["metadata"]
    for url in names[:5]:
        name = url.rsplit("/", 1)[-1]
        status, one = transport.request("GET", f"/1.0/instances/{name}")
        status_state, state = transport.request("GET", f"/1.0/instances/{name}/state")
        if status != 200 or status_state != 200:
            continue  # deleted meanwhile by another test
        expected = reference_instance(json.loads(one)["metadata"], json.loads(state)["metadata"])
        assert json.loads(provider_instance(one, state)) == expected


ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The expected kind of value, or any other JSON value."""
    return st.one_of(strategy, ODD)


def optional_fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object with any subset of the given fields."""
    return st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in fields.items()})


ADDRESS = optional_fields(
    family=st.sampled_from(["inet", "inet6", "x"]),
    address=st.sampled_from(["10.0.0.1", "10.0.0.2", "fd42::1", "fe80::1", "", "é"]),
    scope=st.sampled_from(["global", "link", "local"]),
)
NETWORK = st.dictionaries(
    st.sampled_from(["eth0", "eth1", "lo", "enp5s0"]),
    maybe(optional_fields(addresses=st.lists(maybe(ADDRESS), max_size=4))),
    max_size=3,
)
STATUS = st.sampled_from(["Running", "Stopped", "Error", "Frozen", ""])
CONFIG = st.dictionaries(
    st.sampled_from(
        [
            "user.runner-controller-id",
            "user.runner-pool-id",
            "image.os",
            "image.release",
            "user.os-type",
            "user.os-arch",
            "volatile.uuid",
        ]
    ),
    maybe(st.sampled_from(["c1", "p1", "", "Ubuntu", "windows", "plan9", "jammy", "arm64"])),
    max_size=7,
)
INSTANCE = optional_fields(
    name=st.text(max_size=6),
    status=STATUS,
    architecture=st.sampled_from(["x86_64", "aarch64", "armv7l", "s390x", ""]),
    config=CONFIG,
    expanded_config=CONFIG,
    state=optional_fields(status=STATUS, network=NETWORK),
)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.lists(maybe(INSTANCE), max_size=6), st.sampled_from([None, "p1", ""]))
def test_odd_listings_match_reference(instances: list[Any], pool_id: str | None) -> None:
    body = json.dumps({"type": "sync", "metadata": instances}).encode()
    assert_listing_matches(body, "c1", pool_id)


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(INSTANCE, st.one_of(st.none(), optional_fields(status=STATUS, network=NETWORK)))
def test_odd_instance_matches_reference(instance: dict[str, Any], state: Any) -> None:
    state_body = None if state is None else json.dumps({"metadata": state}).encode()
    converted = json.loads(
        provider_instance(json.dumps({"metadata": instance}).encode(), state_body)
    )
    embedded = instance.get("state") if state is None else state
    assert converted == reference_instance(instance, embedded)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "the instance list is not an LXD response"),
        (b"[]", "the instance list is not an LXD response: invalid type: sequence"),
        (b'{"metadata": {}}', "invalid type: map"),
        (b'{"type": "sync", "metadata": null}', "the instance list has no metadata"),
        ((LXD_FIXTURES / "error-404.json").read_bytes(), "LXD error response: Instance not found"),
    ],
)
def test_bad_listing_envelope_is_an_lxd_error(body: bytes, message: str) -> None:
    with pytest.raises(LxdError, match=re.escape(message)):
        provider_instances(body, "c1", None)


def test_bad_instance_envelopes_are_lxd_errors() -> None:
    instance = (LXD_FIXTURES / "instance.json").read_bytes()
    with pytest.raises(LxdError, match="the instance is not an LXD response"):
        provider_instance(b'{"metadata": []}', None)
    with pytest.raises(LxdError, match="the instance state is an LXD error response"):
        provider_instance(instance, (LXD_FIXTURES / "error-404.json").read_bytes())
