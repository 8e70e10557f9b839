"""Custom volumes, the profiles a pool chooses and its overrides of their devices, without LXD."""

from __future__ import annotations

from typing import Any

import pytest
from pool_policy_judging import NO_ALLOWANCES, accept, refusal_of

from garm_provider_lxd.config import Config, PoolPolicy
from garm_provider_lxd.errors import InputError
from garm_provider_lxd.policy import enforce_pool_policy
from garm_provider_lxd.specs import parse_extra_specs

# -- custom volumes -----------------------------------------------------------------------------

VOLUME = {"type": "disk", "pool": "default", "source": "cache", "path": "/cache"}


def test_a_custom_volume_needs_allow_volumes() -> None:
    assert refusal_of({"devices": {"data": VOLUME}}) == (
        "extra specs: devices.data.source: custom volume default/cache is not allowed by the "
        'provider\'s pool policy (allow it with [pool_policy] allow_volumes = ["default/cache"])'
    )
    accept({"devices": {"data": VOLUME}}, PoolPolicy(allow_volumes=("default/cache",)))
    accept({"devices": {"data": VOLUME}}, PoolPolicy(allow_volumes=("default/ca*",)))
    snapshot = {**VOLUME, "source.snapshot": "snap0", "readonly": "true", "source.type": "custom"}
    accept({"devices": {"data": snapshot}}, PoolPolicy(allow_volumes=("default/*",)))
    assert "default/cache" in refusal_of(
        {"devices": {"data": VOLUME}}, PoolPolicy(allow_volumes=("other/cache", "default/c"))
    )


@pytest.mark.parametrize(
    ("device", "where"),
    [
        # Another instance's root disk (a VM's volume) is not a custom volume.
        ({**VOLUME, "source.type": "virtual-machine"}, "devices.d.source.type"),
        # LXD has no project/volume syntax: a "/" never names another project's volume.
        ({**VOLUME, "source": "other-project/cache"}, "devices.d.source"),
        ({**VOLUME, "source": "cache/snap0"}, "devices.d.source"),
        # An empty pool is no pool: the source is then the host's.
        ({**VOLUME, "pool": "", "source": "/"}, "a host source"),
        ({**VOLUME, "shift": "true"}, "devices.d.shift"),
    ],
)
def test_volume_tricks_are_refused_even_with_allow_volumes(
    device: dict[str, str], where: str
) -> None:
    assert where in refusal_of({"devices": {"d": device}}, PoolPolicy(allow_volumes=("*",)))


def test_the_root_disk_override_needs_no_allowance() -> None:
    accept({"devices": {"root": {"type": "disk", "path": "/", "pool": "fast", "size": "9GiB"}}})


# -- profiles ----------------------------------------------------------------------------------

RUNNER_PROFILE = {  # what `garm-provider-lxd setup` creates
    "config": {"security.nesting": "true", "security.privileged": "false"},
    "devices": {
        "root": {"type": "disk", "path": "/", "pool": "default"},
        "eth0": {"type": "nic", "name": "eth0", "network": "garmbr0"},
    },
}
FILTERED_DEFAULT = {
    "config": {},
    "devices": {
        "root": {"type": "disk", "path": "/", "pool": "default", "size": "10GiB"},
        "eth0": {
            "type": "nic",
            "name": "eth0",
            "network": "garmbr0",
            "security.ipv4_filtering": "true",
            "security.mac_filtering": "true",
            "limits.egress": "100Mbit",
        },
    },
}


class Profiles:
    """An LXD server's profiles for the policy to read, counting the reads."""

    def __init__(self, **profiles: dict[str, Any]) -> None:
        self.profiles = profiles
        self.read: list[str] = []

    def __call__(self, name: str) -> dict[str, Any] | None:
        self.read.append(name)
        return self.profiles.get(name)


def _profile_refusal(
    specs: dict[str, Any], profiles: Profiles, policy: PoolPolicy = NO_ALLOWANCES, **config: Any
) -> str:
    with pytest.raises(InputError) as caught:
        _judge(specs, profiles, policy, **config)
    message = str(caught.value)
    assert "\n" not in message
    return message


def _judge(
    specs: dict[str, Any], profiles: Profiles, policy: PoolPolicy = NO_ALLOWANCES, **config: Any
) -> None:
    from garm_provider_lxd.instances import instance_profiles

    operator = Config(pool_policy=policy, **config)
    parsed = parse_extra_specs(specs)
    names = instance_profiles(operator, parsed, "flavor")
    enforce_pool_policy(operator, parsed, names, profiles)


@pytest.mark.parametrize(
    ("contents", "where"),
    [
        ({"config": {"security.privileged": "true"}}, "config.security.privileged"),
        ({"config": {"raw.lxc": "lxc.apparmor.profile=unconfined"}}, "config.raw.lxc"),
        ({"config": {"limits.kernel.rtprio": "99"}}, "config.limits.kernel.rtprio"),
        ({"config": {"snapshots.schedule": "* * * * *"}}, "config.snapshots.schedule"),
        ({"devices": {"host": {"type": "disk", "source": "/", "path": "/h"}}}, "devices.host"),
        ({"devices": {"v": VOLUME}}, "devices.v.source"),
        ({"devices": {"k": {"type": "unix-char", "source": "/dev/kmsg"}}}, "devices.k"),
    ],
)
def test_a_profile_the_pool_chooses_is_judged_like_its_specs(
    contents: dict[str, Any], where: str
) -> None:
    profiles = Profiles(x=contents)
    message = _profile_refusal({"profiles": ["x"]}, profiles)
    assert message.startswith(f'extra specs: profile "x": {where}')
    assert message.endswith('(allow it with [pool_policy] allow_profiles = ["x"])')
    _judge({"profiles": ["x"]}, profiles, PoolPolicy(allow_profiles=("x",)))
    _judge({"profiles": ["x"]}, profiles, PoolPolicy(allow_profiles=("[wx]",)))


def test_the_flavor_is_judged_too() -> None:
    profiles = Profiles(flavor={"config": {"security.privileged": "true"}})
    assert 'profile "flavor": config.security.privileged' in _profile_refusal({}, profiles)


def test_the_runner_profile_setup_makes_passes() -> None:
    _judge({"profiles": ["runner"]}, Profiles(runner=RUNNER_PROFILE))


def test_the_operators_default_profile_is_not_judged_or_read_without_need() -> None:
    nesting = {"config": {"security.nesting": "true"}}
    default = {"config": {"security.privileged": "true"}, "devices": RUNNER_PROFILE["devices"]}
    profiles = Profiles(default=default, nesting=nesting, runner=RUNNER_PROFILE)
    _judge({"profiles": ["nesting"]}, profiles, include_default_profile=True)
    assert profiles.read == ["nesting"]
    # A chosen profile with devices may replace the default profile's: that one is read then.
    profiles.read.clear()
    _judge({"profiles": ["runner"]}, profiles, include_default_profile=True)
    assert profiles.read == ["runner", "default"]
    profiles.read.clear()
    _judge({}, Profiles(), PoolPolicy(allow_profiles=("flavor",)))
    assert profiles.read == []
    # ...but a pool that chooses "default" without the operator including it gets it judged.
    assert 'profile "default"' in _profile_refusal({"profiles": ["default"]}, profiles)


def test_a_missing_profile_is_left_to_lxd() -> None:
    _judge({"profiles": ["nowhere"]}, Profiles())


def test_what_lxd_returns_is_read_defensively() -> None:
    odd = {"config": None, "devices": {"eth0": "not a device", "x": {"type": "none"}}}
    _judge({"profiles": ["odd"]}, Profiles(odd=odd))
    _judge({"profiles": ["odd"]}, Profiles(odd=[]))  # type: ignore[arg-type]


# -- device overrides --------------------------------------------------------------------------


def _override(device: dict[str, str], name: str = "eth0", **config: Any) -> None:
    _judge({"devices": {name: device}}, Profiles(default=FILTERED_DEFAULT), **config)


NIC = {"type": "nic", "network": "garmbr0", "name": "eth0"}
ROOT = {"type": "disk", "path": "/", "pool": "default"}
FILTERED = {
    **NIC,
    "security.ipv4_filtering": "true",
    "security.mac_filtering": "true",
    "limits.egress": "100Mbit",
}


@pytest.mark.parametrize(
    ("name", "device", "key"),
    [
        ("eth0", NIC, "security.ipv4_filtering"),
        ("eth0", {**FILTERED, "security.mac_filtering": "false"}, "security.mac_filtering"),
        ("eth0", {**FILTERED, "limits.egress": "1Gbit"}, "limits.egress"),
        ("eth0", {**FILTERED, "limits.egress": "101Mbit"}, "limits.egress"),
        ("eth0", {**FILTERED, "limits.egress": "0"}, "limits.egress"),
        ("eth0", {**FILTERED, "limits.egress": "100MB"}, "limits.egress"),
        ("eth0", {**FILTERED, "limits.egress": ""}, "limits.egress"),
        ("eth0", {**FILTERED, "network": "lxdbr0"}, "network"),
        ("root", {"type": "disk", "path": "/", "pool": "default"}, "size"),
        ("root", {"type": "disk", "path": "/", "pool": "default", "size": "11GiB"}, "size"),
        ("root", {"type": "disk", "path": "/", "pool": "default", "size": "10GB0"}, "size"),
        ("root", {"type": "disk", "path": "/", "pool": "fast", "size": "1GiB"}, "pool"),
    ],
)
def test_an_override_may_not_drop_or_loosen_what_the_profile_set(
    name: str, device: dict[str, str], key: str
) -> None:
    with pytest.raises(InputError) as caught:
        _override(device, name, include_default_profile=True)
    message = str(caught.value)
    assert message.startswith(f"extra specs: devices.{name}.{key}: ")
    assert f'profile "default" sets on device {name}' in message
    assert "not drop or loosen" in message


def test_the_refusal_says_what_was_dropped() -> None:
    with pytest.raises(InputError) as caught:
        _override(NIC, include_default_profile=True)
    assert str(caught.value) == (
        'extra specs: devices.eth0.security.ipv4_filtering: drops "true", the value profile '
        '"default" sets on device eth0; a pool may add keys to a profile\'s device and tighten '
        "its limits, not drop or loosen them"
    )


@pytest.mark.parametrize(
    ("name", "device"),
    [
        ("eth0", FILTERED),
        ("eth0", {**FILTERED, "limits.egress": "10Mbit", "limits.ingress": "10Mbit"}),
        ("eth0", {**FILTERED, "limits.egress": "95Mibit"}),  # 99.6 Mbit
        ("eth0", {**FILTERED, "security.ipv6_filtering": "true", "limits.ingress": "5Mbit"}),
        ("eth0", {**FILTERED, "security.ipv4_filtering": "yes"}),
        ("root", {"type": "disk", "path": "/", "pool": "default", "size": "10GiB"}),
        ("root", {"type": "disk", "path": "/", "pool": "default", "size": "5GiB"}),
        ("root", {"type": "disk", "path": "/", "pool": "default", "size": "10737418240"}),
        ("root", {"type": "disk", "path": "/", "pool": "default", "size": "10GB"}),
        ("root", {**ROOT, "size": "2GiB", "readonly": "1"}),
        ("root", {**ROOT, "size": "1GiB", "limits.read": "5MB"}),
    ],
)
def test_an_override_may_add_keys_and_tighten(name: str, device: dict[str, str]) -> None:
    _override(device, name, include_default_profile=True)


@pytest.mark.parametrize(
    "device",
    [
        {"type": "nic", "network": "lxdbr0"},  # the host's bridge, past the runners' ACL
        {**FILTERED, "network": "other-tenant"},
        FILTERED,  # the same network, but a second NIC all the same
    ],
)
def test_a_pool_may_not_add_a_nic_its_profiles_do_not_give(device: dict[str, str]) -> None:
    profiles = Profiles(default=FILTERED_DEFAULT)
    message = _profile_refusal(
        {"devices": {"eth1": device}}, profiles, include_default_profile=True
    )
    assert message == (
        "extra specs: devices.eth1: a NIC that no earlier profile gives the instance is not "
        "allowed by the provider's pool policy (a pool may only replace a profile's NIC, on its "
        'network) (allow it with [pool_policy] allow_device_types = ["nic"])'
    )
    allowing = PoolPolicy(allow_device_types=("nic",))
    _judge({"devices": {"eth1": device}}, profiles, allowing, include_default_profile=True)


def test_a_nic_replacing_a_profiles_disk_is_a_new_nic() -> None:
    message = _profile_refusal(
        {"devices": {"root": FILTERED}}, Profiles(default=FILTERED_DEFAULT),
        include_default_profile=True,
    )  # fmt: skip
    assert message.startswith("extra specs: devices.root: a NIC that no earlier profile gives")


def test_the_nic_of_a_chosen_profile_is_the_operators_choice() -> None:
    """The flavor setup makes carries the runner's only NIC: a profile's NIC is not new."""
    _judge({"profiles": ["runner"]}, Profiles(runner=RUNNER_PROFILE))
    eth0 = {"type": "nic", "name": "eth0", "network": "garmbr0", "limits.egress": "1Gbit"}
    _judge({"devices": {"eth0": eth0}, "profiles": ["runner"]}, Profiles(runner=RUNNER_PROFILE))


def test_an_override_may_not_change_the_device_type() -> None:
    with pytest.raises(InputError) as caught:
        _override({"type": "none"}, include_default_profile=True)
    assert str(caught.value).startswith(
        'extra specs: devices.eth0: replaces profile "default"\'s nic device eth0 with a device '
        "of type none;"
    )


def test_allow_device_types_lifts_the_override_rule_for_that_type() -> None:
    policy = PoolPolicy(allow_device_types=("nic",))
    profiles = Profiles(default=FILTERED_DEFAULT)
    _judge({"devices": {"eth0": NIC}}, profiles, policy, include_default_profile=True)


def test_a_chosen_profile_may_not_loosen_an_earlier_profiles_device() -> None:
    profiles = Profiles(default=FILTERED_DEFAULT, loose={"devices": {"eth0": NIC}})
    message = _profile_refusal({"profiles": ["loose"]}, profiles, include_default_profile=True)
    assert message.startswith('extra specs: profile "loose": devices.eth0.security.ipv4_filtering')
    assert message.endswith('allow_profiles = ["loose"])')
    allowed = PoolPolicy(allow_profiles=("loose",))
    _judge({"profiles": ["loose"]}, profiles, allowed, include_default_profile=True)


@pytest.mark.parametrize(
    ("kind", "key", "before", "after", "loosens"),
    [
        ("disk", "size", "10GiB", "10240MiB", False),
        ("disk", "size", "10GiB", "10241MiB", True),
        ("disk", "size", "1GB", "1000000000", False),
        ("disk", "size", "1GB", "1000000001", True),
        ("disk", "size", "1GB", "1.5GB", True),
        ("disk", "size", "0", "5GiB", False),
        ("disk", "size", "5GiB", "0", True),
        ("disk", "size", "9999999EiB", "1GiB", True),  # unreadable: overflows int64
        ("disk", "limits.read", "100iops", "50iops", False),
        ("disk", "limits.read", "100iops", "150iops", True),
        ("disk", "limits.read", "100iops", "1MB", True),
        ("disk", "limits.max", "30MB", "29MB", False),
        ("nic", "limits.ingress", "1Gbit", "999Mbit", False),
        ("nic", "limits.ingress", "1Gibit", "1Gbit", False),
        ("nic", "limits.ingress", "1Gbit", "1Gibit", True),
        ("nic", "security.port_isolation", "false", "true", False),
        ("nic", "security.port_isolation", "true", "off", True),
        ("nic", "hwaddr", "00:16:3e:00:00:01", "00:16:3e:00:00:02", True),
        ("disk", "readonly", "true", "on", False),
    ],
)
def test_what_loosens_a_device_value(
    kind: str, key: str, before: str, after: str, loosens: bool
) -> None:
    from garm_provider_lxd.policy_values import loosens as judge

    assert judge(kind, key, before, after) is loosens


def test_a_key_that_cannot_tighten_is_said_to_change() -> None:
    with pytest.raises(InputError) as caught:
        _override({**FILTERED, "network": "lxdbr0"}, include_default_profile=True)
    assert str(caught.value).startswith(
        'extra specs: devices.eth0.network: changes "garmbr0" to "lxdbr0", the value profile '
        '"default" sets on device eth0;'
    )
