"""The pool policy table and its glob matcher, without LXD."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pool_policy_judging import accept, refusal_of

from garm_provider_lxd.config import Config, ImageRemote, PoolPolicy, image_host, parse_config
from garm_provider_lxd.errors import InputError
from garm_provider_lxd.policy import (
    SAFE_CONFIG,
    config_allowed,
    enforce_pool_policy,
    glob_match,
)
from garm_provider_lxd.specs import ExtraSpecs, parse_extra_specs


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("limits.*", "limits.cpu", True),
        ("limits.*", "limits.", True),
        ("limits.*", "limits", False),
        ("limits.*", "Limits.cpu", False),
        ("*", "", True),
        ("", "", True),
        ("", "a", False),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXbYY", False),
        ("raw.?xc", "raw.lxc", True),
        ("raw.?xc", "raw.xc", False),
        ("security.[ip]*", "security.privileged", True),
        ("security.[!p]*", "security.privileged", False),
        ("[]]", "]", True),
        ("[!]]", "]", False),
        ("[a-c]", "b", True),
        ("[c-a]", "b", False),
        ("[a-]", "-", True),
        ("[", "[", True),
        ("[abc", "[abc", True),
        ("x[", "x[", True),
        ("*[", "ab[", True),
    ],
)
def test_glob_match_examples(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected
    assert fnmatch.fnmatchcase(text, pattern) is expected


_PATTERN_CHARS = st.sampled_from([*"ab.-*?[]!", "a-b", "[!a]", "[a-b]"])
_TEXT = st.text(alphabet="ab.-[]!", max_size=12)


@given(st.lists(_PATTERN_CHARS, max_size=8).map("".join), _TEXT)
def test_glob_match_agrees_with_fnmatchcase(pattern: str, text: str) -> None:
    assert glob_match(pattern, text) is fnmatch.fnmatchcase(text, pattern)


def test_glob_match_stays_linear_on_a_hostile_key() -> None:
    # A naive recursive matcher takes exponential time here; this returns at once.
    assert not glob_match("*a*a*a*a*a*a*a*a*b", "a" * 5000)


def test_the_message_names_the_key_and_the_allowing_entry() -> None:
    assert refusal_of({"config": {"security.privileged": "true"}}) == (
        "extra specs: config.security.privileged: not allowed by the provider's pool policy "
        "with this value, by default only false "
        '(allow it with [pool_policy] allow_config = ["security.privileged"])'
    )
    assert refusal_of({"config": {"raw.lxc": "x"}}) == (
        "extra specs: config.raw.lxc: not allowed by the provider's pool policy "
        '(allow it with [pool_policy] allow_config = ["raw.lxc"])'
    )


@pytest.mark.parametrize(
    "key",
    [
        "limits.cpu",
        "limits.cpu.nodes",
        "limits.cpu.priority",
        "limits.hugepages.2MB",
        "limits.memory",
        "limits.memory.enforce",
        "limits.memory.swap.priority",
        "limits.processes",
        "security.nesting",
        "security.syscalls.intercept.mknod",
        "security.syscalls.intercept.setxattr",
        "environment.HTTP_PROXY",
        "user.team",
    ],
)
def test_safe_keys_need_no_allowance(key: str) -> None:
    assert config_allowed(key, "1", PoolPolicy())


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("limits.cpu.allowance", "50%", True),
        ("limits.cpu.allowance", "100%", True),
        ("limits.cpu.allowance", "101%", False),
        ("limits.cpu.allowance", "1000%", False),
        ("limits.cpu.allowance", "25ms/100ms", True),
        ("limits.cpu.allowance", "400ms/100ms", True),
        ("limits.cpu.allowance", "-5%", False),
        ("limits.cpu.allowance", "x/y", False),
        ("limits.disk.priority", "0", True),
        ("limits.disk.priority", "5", True),
        ("limits.disk.priority", "6", False),
        ("limits.disk.priority", "10", False),
        ("limits.disk.priority", "+1", False),
        ("limits.memory.swap", "true", True),
        ("limits.memory.swap", "false", False),
        ("boot.autostart", "false", True),
        ("boot.autostart", "OFF", True),
        ("boot.autostart", "0", True),
        ("boot.autostart", "true", False),
        ("cluster.evacuate", "stop", True),
        ("cluster.evacuate", "auto", True),
        ("cluster.evacuate", "live-migrate", False),
        ("security.privileged", "false", True),
        ("security.privileged", "no", True),
        ("security.privileged", "true", False),
        ("security.privileged", "1", False),
        ("security.privileged", "", False),
    ],
)
def test_some_keys_are_safe_only_with_values_that_take(key: str, value: str, allowed: bool) -> None:
    assert config_allowed(key, value, PoolPolicy()) is allowed
    if not allowed:
        message = refusal_of({"config": {key: value}})
        assert f"config.{key}: not allowed by the provider's pool policy with this value" in message
        assert f'allow_config = ["{key}"]' in message
    assert config_allowed(key, value, PoolPolicy(allow_config=(key,)))


@pytest.mark.parametrize(
    "key",
    [
        "security.privileged",
        "security.idmap.isolated",
        "security.idmap.base",
        "raw.lxc",
        "raw.idmap",
        "raw.apparmor",
        "raw.seccomp",
        "raw.qemu",
        "raw.qemu.conf",
        "linux.kernel_modules",
        "linux.kernel_modules.load",
        "linux.sysctl.net.ipv4.ip_forward",
        "security.devlxd",
        "security.devlxd.images",
        "security.guestapi",
        "security.syscalls.intercept.mount",
        "security.syscalls.intercept.mount.allowed",
        "security.syscalls.intercept.bpf",
        "security.syscalls.allow",
        "security.syscalls.deny_default",
        "security.protection.delete",
        "security.agent.metrics",
        "security.csm",
        "nvidia.runtime",
        "agent.nic_config",
        "ubuntu_pro.guest_attach",
        "Security.Privileged",
        "SECURITY.PRIVILEGED",
        " raw.lxc",
        "raw.lxc ",
        "raw.lxc\n",
        "security.nesting\t",
        "Limits.cpu",
        "limits",
        "",
        # Not limits that only take (docs/security.md, "Pool config keys").
        "limits.kernel.rtprio",
        "limits.kernel.nofile",
        "limits.kernel.memlock",
        "limits.memory.hugepages",
        "limits.cpu.pin_strategy",
        "limits.network.priority",
        "limits.max_bus_ports",
        "limits.hugepages.foo",
        "snapshots.pattern",
        "snapshots.schedule",
        "snapshots.schedule.stopped",
        "snapshots.expiry",
        "migration.stateful",
        "migration.incremental.memory",
        "boot.autostart.delay",
        "boot.autostart.priority",
        "boot.host_shutdown_timeout",
        "boot.stop.priority",
        "boot.debug_edk2",
    ],
)
def test_everything_else_is_refused_by_default(key: str) -> None:
    assert not config_allowed(key, "true", PoolPolicy())
    assert "allow_config" in refusal_of({"config": {key: "true"}})


def test_allow_config_takes_globs_and_is_case_sensitive() -> None:
    policy = PoolPolicy(allow_config=("security.privileged", "raw.*"))
    accept({"config": {"security.privileged": "true", "raw.lxc": "x", "raw.idmap": "y"}}, policy)
    assert "Security.Privileged" in refusal_of({"config": {"Security.Privileged": "true"}}, policy)
    assert "security.idmap.base" in refusal_of({"config": {"security.idmap.base": "1"}}, policy)


def test_an_allowance_can_only_be_a_key_lxd_would_accept_verbatim() -> None:
    # The config file strips each pattern, so a key hiding behind whitespace never matches.
    policy = parse_config(
        b'unix_socket_path = "/s"\n[pool_policy]\nallow_config = [" raw.lxc "]\n'
    ).pool_policy
    assert policy.allow_config == ("raw.lxc",)
    assert "' raw.lxc'" in refusal_of({"config": {" raw.lxc": "x"}}, policy)


def test_reserved_keys_are_refused_before_any_policy() -> None:
    for key in ("volatile.uuid", "user.runner-pool-id", "cloud-init.user-data", "boot.mode"):
        with pytest.raises(InputError, match="set by the provider or LXD"):
            parse_extra_specs({"config": {key: "x"}})


@pytest.mark.parametrize(
    ("device", "where"),
    [
        ({"type": "disk", "source": "/", "path": "/mnt"}, "devices.d.source"),
        ({"type": "disk", "source": "/var/lib/lxd", "path": "/mnt"}, "devices.d.source"),
        ({"type": "disk", "source": "ceph:pool/vol", "path": "/mnt"}, "devices.d.source"),
        ({"type": "disk", "source": "relative", "path": "/mnt"}, "devices.d.source"),
        ({"type": "disk", "path": "/", "pool": "p", "propagation": "shared"}, "propagation"),
        ({"type": "disk", "path": "/", "pool": "p", "raw.mount.options": "dev"}, "raw.mount"),
        ({"type": "nic", "nictype": "physical", "parent": "eth0"}, "devices.d:"),
        ({"type": "nic", "parent": "br-mgmt"}, "devices.d:"),
        ({"type": "nic", "name": "eth1"}, "devices.d:"),
        ({"type": "nic", "network": "n", "vlan": "10"}, "devices.d.vlan"),
        ({"type": "nic", "network": "n", "security.acls": ""}, "devices.d.security.acls"),
        # Claims what other instances hold (a MAC, a DHCP lease), outranks their traffic, or
        # reaches the host's side of the device (its veth's MTU, its page cache).
        ({"type": "nic", "network": "n", "hwaddr": "00:16:3e:00:00:01"}, "devices.d.hwaddr"),
        ({"type": "nic", "network": "n", "ipv4.address": "10.0.0.1"}, "devices.d.ipv4.address"),
        ({"type": "nic", "network": "n", "ipv6.address": "fd00::1"}, "devices.d.ipv6.address"),
        ({"type": "nic", "network": "n", "limits.priority": "7"}, "devices.d.limits.priority"),
        ({"type": "nic", "network": "n", "mtu": "9000"}, "devices.d.mtu"),
        ({"type": "disk", "path": "/", "pool": "p", "io.cache": "unsafe"}, "devices.d.io.cache"),
        # A NIC no profile gives: a network the pool adds (here no profile at all).
        ({"type": "nic", "network": "lxdbr0", "name": "eth1"}, "devices.d: a NIC that no"),
        ({"type": "none", "source": "/"}, "devices.d.source"),
        ({"type": "proxy"}, "proxy"),
        ({"type": "unix-char", "source": "/dev/null"}, "unix-char"),
        ({"type": "unix-block"}, "unix-block"),
        ({"type": "unix-hotplug"}, "unix-hotplug"),
        ({"type": "usb"}, "usb"),
        ({"type": "gpu"}, "gpu"),
        ({"type": "pci"}, "pci"),
        ({"type": "infiniband"}, "infiniband"),
        ({"type": "tpm"}, "tpm"),
        ({"type": "Disk", "source": "/"}, "Disk"),
        ({"type": "disk ", "source": "/"}, "'disk '"),
        ({"type": ""}, "''"),
    ],
)
def test_devices_that_reach_the_host_are_refused(device: dict[str, str], where: str) -> None:
    message = refusal_of({"devices": {"d": device}})
    assert where in message
    assert "allow_device_types" in message


@pytest.mark.parametrize(
    "device",
    [
        {"type": "disk", "path": "/", "pool": "fast", "size": "40GiB"},
        {"type": "none"},
    ],
)
def test_pool_disks_and_none_are_allowed(device: dict[str, str]) -> None:
    accept({"devices": {"d": device}})


def test_allow_device_types_lifts_the_restrictions_of_that_type_only() -> None:
    policy = PoolPolicy(allow_device_types=("disk", "unix-char"))
    accept(
        {
            "devices": {
                "host": {"type": "disk", "source": "/srv/cache", "path": "/cache"},
                "null": {"type": "unix-char", "source": "/dev/null"},
            }
        },
        policy,
    )
    assert "proxy" in refusal_of({"devices": {"p": {"type": "proxy"}}}, policy)


@pytest.mark.parametrize(
    ("project", "own", "allowed"),
    [
        ("default", "", True),
        ("default", "default", True),
        ("runners", "runners", True),
        ("other", "runners", False),
        ("default", "runners", False),
        ("Runners", "runners", False),
        ("ci-vms", "runners", True),
    ],
)
def test_projects(project: str, own: str, allowed: bool) -> None:
    policy = PoolPolicy(allow_projects=("ci-vms",))
    specs = {"project": project}
    if allowed:
        accept(specs, policy, project_name=own)
    else:
        assert f'allow_projects = ["{project}"]' in refusal_of(specs, policy, project_name=own)


def test_image_remote_must_be_verified_https() -> None:
    hosts = PoolPolicy(allow_image_hosts=("images.example", "i.example"))
    accept({"image_remote": {"addr": "https://images.example"}}, hosts)
    message = refusal_of({"image_remote": {"addr": "http://images.example"}}, hosts)
    assert "image_remote.addr: plain http" in message
    message = refusal_of(
        {"image_remote": {"addr": "https://i.example", "skip_verify": True}}, hosts
    )
    assert "image_remote.skip_verify" in message
    assert "[image_remotes]" in message


def test_image_remote_on_an_unlisted_host_names_the_allowing_entry() -> None:
    message = refusal_of({"image_remote": {"addr": "https://10.99.0.1:54/streams"}})
    assert message == (
        "extra specs: image_remote.addr: host 10.99.0.1:54 is not allowed by the provider's pool "
        'policy (allow it with [pool_policy] allow_image_hosts = ["10.99.0.1:54"], or declare '
        "the server in the provider config's [image_remotes])"
    )


def test_image_remote_of_a_declared_remote_needs_no_allowance() -> None:
    # The same addr as an [image_remotes] entry is the operator's own server, http included.
    remotes = {
        "mirror": ImageRemote(addr="https://mirror.internal/streams/"),
        "plain": ImageRemote(addr="http://10.0.0.5:8080"),
    }
    accept({"image_remote": {"addr": "https://mirror.internal/streams"}}, image_remotes=remotes)
    accept({"image_remote": {"addr": "http://10.0.0.5:8080/"}}, image_remotes=remotes)
    for other in ("https://mirror.internal/other", "https://mirror.internal:8443/streams"):
        message = refusal_of({"image_remote": {"addr": other}}, image_remotes=remotes)
        assert "allow_image_hosts" in message


@pytest.mark.parametrize(
    ("addr", "patterns", "allowed"),
    [
        ("https://images.example/streams", ("images.example",), True),
        ("https://Images.Example/", ("images.example",), True),
        ("https://images.example/", ("IMAGES.example",), True),
        ("https://images.example:443/", ("images.example",), True),
        # A port other than 443 is part of what the pattern must match.
        ("https://images.example:8443/", ("images.example",), False),
        ("https://images.example:8443/", ("images.example:8443",), True),
        ("https://images.example:22/", ("images.example:8443",), False),
        ("https://a.mirrors.example/", ("*.mirrors.example",), True),
        ("https://a.mirrors.example:22/", ("*.mirrors.example",), False),
        ("https://mirrors.example.evil/", ("*.mirrors.example",), False),
        ("https://127.0.0.1:9/", ("127.0.0.1",), False),
        ("https://127.0.0.1:9/", ("127.0.0.1:9",), True),
        ("https://[2001:db8::1]:8443/", ("[2001:db8::1]:8443",), True),
        ("https://[2001:db8::1]/", ("[2001:db8::1]",), True),
        ("https://[2001:db8::1]/", ("2001:db8::1",), False),
        # Anything but a plain host: refused whatever the patterns say.
        ("https://images.example@10.0.0.1/", ("*",), False),
        ("https://images.example%2e10.0.0.1/", ("*",), False),
        ("https://images.example:/", ("*",), False),
        ("https://images.example:99999/", ("*",), False),
        ("https://images.example:0/", ("*",), False),
        ("https://[fe80::1%25eth0]/", ("*",), False),
        ("https://[::1/", ("*",), False),
        ("https://images.example:+443/", ("*",), False),
        ("https://ima_ges.example/", ("*",), False),
        ("https://images.example/", ("*",), True),
    ],
)
def test_image_remote_hosts(addr: str, patterns: tuple[str, ...], allowed: bool) -> None:
    specs = {"image_remote": {"addr": addr}}
    if allowed:
        accept(specs, PoolPolicy(allow_image_hosts=patterns))
    else:
        message = refusal_of(specs, PoolPolicy(allow_image_hosts=patterns))
        assert message.startswith("extra specs: image_remote.addr: "), message


def test_allow_image_hosts_is_read_from_the_config() -> None:
    policy = parse_config(
        b'unix_socket_path = "/s"\n[pool_policy]\nallow_image_hosts = ["*.mirrors.example"]\n'
    ).pool_policy
    assert policy.allow_image_hosts == ("*.mirrors.example",)
    accept({"image_remote": {"addr": "https://eu.mirrors.example/streams"}}, policy)


@pytest.mark.parametrize(
    ("addr", "host"),
    [
        ("https://Images.Example/x", "images.example"),
        ("https://images.example:443", "images.example"),
        ("http://images.example:80/", "images.example"),
        ("http://images.example:443/", "images.example:443"),
        ("https://192.0.2.1:08443/", "192.0.2.1:8443"),
        ("https://[2001:DB8::1]:443/", "[2001:db8::1]"),
        ("https://user:pw@images.example/", ""),
        ("https://images.example:1:2/", ""),
        ("https:///x", ""),
    ],
)
def test_image_host(addr: str, host: str) -> None:
    assert image_host(addr) == host


def test_no_specs_is_always_allowed() -> None:
    enforce_pool_policy(Config(), ExtraSpecs())
    enforce_pool_policy(Config(image_remotes={"x": ImageRemote(addr="http://plain")}), ExtraSpecs())


def test_names_from_the_pool_stay_on_one_printable_line() -> None:
    message = refusal_of({"config": {"raw.lxc\u2028x": "1", "a": "b"}})
    assert message.isprintable()
    assert "\\u2028" in message


def test_the_safe_list_has_no_dangerous_family() -> None:
    for pattern in SAFE_CONFIG:
        assert not pattern.startswith(("raw.", "linux.", "security.idmap", "security.priv"))
