"""Pool policy: what a pool's extra specs may ask of LXD, deny by default beyond a safe set.

Whoever can edit a GARM pool writes its extra specs. Anything that reaches past the instance to
the LXD host (privileged containers, raw LXC/QEMU settings, host paths and host devices, other
projects, unverified image servers) is refused unless the operator's `[pool_policy]` allows it.
"""

from __future__ import annotations

from .errors import InputError
from .policy_values import SAFE_CONFIG_VALUES, loosens, tightenable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from .config import Config, ImageRemote, PoolPolicy
    from .specs import ExtraSpecs

# Instance config keys a pool may set with any value and without an allowance: each one only
# takes from the runner (a cap on a resource the instance has all of without it) or stays inside
# it. docs/security.md gives the reason for every entry from LXD's documentation; every other
# key (security.privileged, raw.*, linux.*, snapshots.*, migration.*, limits.kernel.*, most of
# boot.*, ...) needs allow_config. The two syscall intercepts and nesting give the runner
# something: they are the ones LXD documents as safe in an unprivileged container (a fixed list
# of device nodes, of overlayfs attributes) and that Docker inside a runner uses.
SAFE_CONFIG = (
    "limits.cpu",
    "limits.cpu.nodes",
    "limits.cpu.priority",
    "limits.hugepages.64KB",
    "limits.hugepages.1MB",
    "limits.hugepages.2MB",
    "limits.hugepages.1GB",
    "limits.memory",
    "limits.memory.enforce",
    "limits.memory.swap.priority",
    "limits.processes",
    "environment.*",
    "user.*",
    "security.nesting",
    "security.syscalls.intercept.mknod",
    "security.syscalls.intercept.setxattr",
)

# Device keys a pool may set on a disk from a storage pool (the root disk, or a custom volume
# the policy lists) and on a NIC on a managed network (in the specs, only one that replaces a
# NIC of the instance's profiles, on its network: _check_new_nic). Each only takes from the
# runner or concerns only itself (docs/security.md, "Device keys allowed by default"). Other
# keys need the device type in allow_device_types: they reach the host (raw.mount.options,
# propagation, shift, ceph.*, nictype, parent), widen the network (vlan, security.acls,
# ipv4.routes.*), claim what other instances use (hwaddr, ipv4.address, ipv6.address: a MAC or
# a DHCP lease another runner holds), raise the runner's share against the others
# (limits.priority) or reach the host's side (mtu of the host's veth, io.cache: its page cache).
_DISK_KEYS = frozenset(
    {"type", "path", "pool", "size", "size.state", "readonly", "required"}
    | {"boot.priority", "limits.read", "limits.write", "limits.max", "io.bus"}
)
_VOLUME_KEYS = _DISK_KEYS | {"source", "source.snapshot", "source.type"}
_NIC_KEYS = frozenset(
    {"type", "name", "network", "boot.priority", "limits.ingress", "limits.egress", "limits.max"}
    | {"security.mac_filtering", "security.ipv4_filtering", "security.ipv6_filtering"}
    | {"security.port_isolation"}
)
_REFUSED = "not allowed by the provider's pool policy"
_TIGHTEN_ONLY = (
    "a pool may add keys to a profile's device and tighten its limits, not drop or loosen them"
)


def glob_match(pattern: str, text: str) -> bool:
    """Whether text matches a shell pattern (*, ?, [abc], [!a-z]), case-sensitive (fnmatchcase)."""
    # `fnmatch` imports `re`, a start-up cost on every runner create. One backtracking point
    # (the last `*`) is enough because every other token matches exactly one character, so the
    # work stays within len(pattern) * len(text) whatever the (pool-controlled) text is.
    p = t = 0
    star_p, star_t = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star_p, star_t = p, t
            p += 1
            continue
        after = _match_one(pattern, p, text[t]) if p < len(pattern) else -1
        if after >= 0:
            p, t = after, t + 1
        elif star_p >= 0:
            star_t += 1
            p, t = star_p + 1, star_t
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _match_one(pattern: str, p: int, char: str) -> int:
    """Index after the token at p when it matches char, else -1."""
    token = pattern[p]
    if token == "?":
        return p + 1
    if token == "[":
        end, matched = _bracket(pattern, p, char)
        if end >= 0:
            return end if matched else -1
        # No closing bracket: the "[" is a literal character, as in fnmatch.
    return p + 1 if token == char else -1


def _bracket(pattern: str, start: int, char: str) -> tuple[int, bool]:
    """(index after the set, whether char is in it) for the set at start; -1 if unclosed."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] == "!"
    if negate:
        i += 1
    first = i
    matched = False
    while i < len(pattern) and (pattern[i] != "]" or i == first):
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            matched = matched or pattern[i] <= char <= pattern[i + 2]
            i += 3
        else:
            matched = matched or pattern[i] == char
            i += 1
    if i >= len(pattern):
        return -1, False
    return i + 1, matched != negate


class _Refused(Exception):
    """One refusal: where (path), why, and the [pool_policy] entry and value that would allow it."""

    def __init__(self, path: str, problem: str, entry: str = "", value: str = "") -> None:
        super().__init__(path)
        self.path, self.problem, self.entry, self.value = path, problem, entry, value


def enforce_project_policy(config: Config, specs: ExtraSpecs) -> None:
    """Raise InputError when the specs name a project the config's pool policy does not allow."""
    if specs.project is not None:
        _check_project(specs.project, config.project_name or "default", config.pool_policy)


def enforce_pool_policy(
    config: Config,
    specs: ExtraSpecs,
    profiles: Sequence[str] = (),
    read_profile: Callable[[str], Mapping[str, Any] | None] | None = None,
) -> None:
    """Raise InputError naming the first part of a pool the config's pool policy does not allow.

    profiles are the instance's profiles in order (provider.instance_profiles) and read_profile
    returns one's contents from LXD (None when it does not exist: LXD refuses that create). Each
    profile the pool chose is judged like its extra specs unless allow_profiles lists it, and
    no device of the pool (or of a profile it chose) may loosen a device of an earlier profile.
    """
    policy = config.pool_policy
    enforce_project_policy(config, specs)
    try:
        for key, value in specs.config.items():
            _check_config(key, value, policy)
        for name, device in specs.devices.items():
            _check_device(name, device, policy)
    except _Refused as refused:
        raise _specs_error(refused) from None
    if specs.image_remote is not None:
        _check_image_remote(specs.image_remote, config)
    if read_profile is None:  # no profile read: none whose device a pool's device replaces
        profiles, read_profile = (), lambda _name: None
    _check_profiles(config, specs, profiles, read_profile)


def config_allowed(key: str, value: str, policy: PoolPolicy) -> bool:
    """Whether a pool may set config key to value (reserved keys are refused by specs.py)."""
    if any(glob_match(pattern, key) for pattern in SAFE_CONFIG + policy.allow_config):
        return True
    rule = SAFE_CONFIG_VALUES.get(key)
    return rule is not None and rule[0](value)


def _check_project(project: str, own: str, policy: PoolPolicy) -> None:
    if project != own and project not in policy.allow_projects:
        problem = f"project {_show(project)} is {_REFUSED}"
        raise _specs_error(_Refused("project", problem, "allow_projects", project))


def _check_config(key: str, value: str, policy: PoolPolicy) -> None:
    if config_allowed(key, value, policy):
        return
    rule = SAFE_CONFIG_VALUES.get(key)
    problem = f"{_REFUSED} with this value, by default only {rule[1]}" if rule else _REFUSED
    raise _Refused(f"config.{_show(key)}", problem, "allow_config", key)


def _check_device(name: str, device: Mapping[str, str], policy: PoolPolicy) -> None:
    kind = device.get("type", "")
    if kind in policy.allow_device_types:
        return
    path = f"devices.{_show(name)}"
    if kind == "disk":
        allowed = _check_disk_source(path, device, policy)
    elif kind == "nic":
        if device.get("nictype") or device.get("parent") or not device.get("network"):
            problem = f"a NIC on a host interface (not a managed network) is {_REFUSED}"
            raise _Refused(path, problem, "allow_device_types", kind)
        allowed = _NIC_KEYS
    elif kind == "none":
        allowed = frozenset({"type"})
    else:
        raise _Refused(path, f"device type {_show(kind)} is {_REFUSED}", "allow_device_types", kind)
    for key in device:
        if key not in allowed:
            problem = f"{_REFUSED} on a {kind} device"
            raise _Refused(f"{path}.{_show(key)}", problem, "allow_device_types", kind)


def _check_disk_source(path: str, device: Mapping[str, str], policy: PoolPolicy) -> frozenset[str]:
    """The keys this disk may carry; raise when its source is the host's or an unlisted volume."""
    if "source" not in device:
        return _DISK_KEYS  # the root disk (or its override): no source, a storage pool
    pool = device.get("pool", "")
    if not pool:
        # Without a storage pool the source is the host's: a path, or a ceph/cephfs mount.
        problem = f"a host source (a disk without a pool) is {_REFUSED}"
        raise _Refused(f"{path}.source", problem, "allow_device_types", "disk")
    if device.get("source.type", "custom") != "custom":
        # source.type=virtual-machine attaches another instance's root disk.
        problem = f"a volume of type {_show(device['source.type'])} is {_REFUSED}"
        raise _Refused(f"{path}.source.type", problem, "allow_device_types", "disk")
    # The volume lives in the instance's project (or the default one when that project has no
    # storage volumes of its own): LXD has no syntax for another project's volume here.
    volume = f"{pool}/{device['source']}"
    if "/" in device["source"] or not any(
        glob_match(pattern, volume) for pattern in policy.allow_volumes
    ):
        problem = f"custom volume {_show(volume)} is {_REFUSED}"
        raise _Refused(f"{path}.source", problem, "allow_volumes", volume)
    return _VOLUME_KEYS


def _check_profiles(
    config: Config,
    specs: ExtraSpecs,
    profiles: Sequence[str],
    read_profile: Callable[[str], Mapping[str, Any] | None],
) -> None:
    """Judge the profiles the pool chose, then every device that replaces a profile's device."""
    policy = config.pool_policy

    def trusted(name: str) -> bool:
        operators = name == "default" and config.include_default_profile
        return operators or any(glob_match(pattern, name) for pattern in policy.allow_profiles)

    contents: dict[str, Mapping[str, Any]] = {}
    for name in profiles:
        if not trusted(name):
            contents[name] = _profile(read_profile(name))
    # The profiles the operator trusts matter only when a later device may replace theirs.
    if specs.devices or any(profile["devices"] for profile in contents.values()):
        for name in profiles:
            if name not in contents:
                contents[name] = _profile(read_profile(name))
    # name -> (profile that set it, device): what each device name is when the profiles apply.
    effective: dict[str, tuple[str, Mapping[str, str]]] = {}
    for name in profiles:
        profile = contents.get(name)
        if profile is None:
            continue
        if not trusted(name):
            try:
                for key, value in profile["config"].items():
                    _check_config(key, value, policy)
                for device_name, device in profile["devices"].items():
                    _check_device(device_name, device, policy)
                    _check_override(device_name, device, effective, policy)
            except _Refused as refused:
                raise _profile_error(name, refused) from None
        for device_name, device in profile["devices"].items():
            effective[device_name] = (name, device)
    try:
        for device_name, device in specs.devices.items():
            _check_new_nic(device_name, device, effective, policy)
            _check_override(device_name, device, effective, policy)
    except _Refused as refused:
        raise _specs_error(refused) from None


def _check_new_nic(
    name: str,
    device: Mapping[str, str],
    effective: Mapping[str, tuple[str, Mapping[str, str]]],
    policy: PoolPolicy,
) -> None:
    """Refuse a pool's NIC that does not replace a NIC of its profiles: a network it adds.

    A NIC gives the runner a network, and any managed network of the project would do (the
    host's default bridge, another tenant's): in its specs a pool may only replace the NIC its
    profiles give, on the same network and tightened (_check_override), unless the policy
    lists the type. A profile's own NIC is the operator's choice of network (docs/security.md).
    """
    if device.get("type", "") != "nic" or "nic" in policy.allow_device_types:
        return
    before = effective.get(name)
    if before is None or before[1].get("type", "") != "nic":
        problem = (
            f"a NIC that no earlier profile gives the instance is {_REFUSED} (a pool may only "
            "replace a profile's NIC, on its network)"
        )
        raise _Refused(f"devices.{_show(name)}", problem, "allow_device_types", "nic")


def _profile(raw: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A profile's config and devices as string maps (LXD's shape; anything else is empty)."""
    raw = raw if isinstance(raw, dict) else {}
    config = raw.get("config")
    config = config if isinstance(config, dict) else {}
    devices = raw.get("devices")
    devices = devices if isinstance(devices, dict) else {}
    return {
        "config": {str(key): str(value) for key, value in config.items()},
        "devices": {
            str(name): {str(key): str(value) for key, value in device.items()}
            for name, device in devices.items()
            if isinstance(device, dict)
        },
    }


def _check_override(
    name: str,
    device: Mapping[str, str],
    effective: Mapping[str, tuple[str, Mapping[str, str]]],
    policy: PoolPolicy,
) -> None:
    """Refuse a device that replaces a profile's device of that name and drops or loosens it."""
    if name not in effective:
        return
    owner, before = effective[name]
    kind = device.get("type", "")
    if kind in policy.allow_device_types:
        return
    path = f"devices.{_show(name)}"
    if kind != before.get("type", ""):
        raise _Refused(
            path,
            f"replaces profile {_quote(owner)}'s {_show(before.get('type', ''))} device "
            f"{_show(name)} with a device of type {_show(kind)}; {_TIGHTEN_ONLY}",
        )
    for key, old in before.items():
        new = device.get(key, "")
        if not old or not loosens(kind, key, old, new):
            continue
        verb = "loosens" if tightenable(kind, key) else "changes"
        change = f"drops {_quote(old)}" if not new else f"{verb} {_quote(old)} to {_quote(new)}"
        raise _Refused(
            f"{path}.{_show(key)}",
            f"{change}, the value profile {_quote(owner)} sets on device {_show(name)}; "
            f"{_TIGHTEN_ONLY}",
        )


def _check_image_remote(remote: ImageRemote, config: Config) -> None:
    # The LXD server connects to whatever a pool's image_remote names, and its answer (refused
    # at once, or a hang until the operation times out) comes back as GARM's fault text: a
    # pool admin could map the LXD host's network. So only the operator's own servers (the
    # addr of an [image_remotes] entry) or hosts it lists; checked before any request.
    from .config import image_host

    addr = remote.addr.rstrip("/")
    if any(addr == declared.addr.rstrip("/") for declared in config.image_remotes.values()):
        return
    declare = "or declare the server in the provider config's [image_remotes]"
    if remote.addr.partition("://")[0] != "https":
        raise InputError(
            f"extra specs: image_remote.addr: plain http is {_REFUSED} (use https:// {declare})"
        )
    if remote.skip_verify:
        raise InputError(f"extra specs: image_remote.skip_verify: {_REFUSED} ({declare[3:]})")
    host = image_host(remote.addr)
    if not host:
        raise InputError(
            "extra specs: image_remote.addr: only a plain host name or address (and port) can "
            f"be allowed, without user information or escapes ({declare[3:]})"
        )
    patterns = config.pool_policy.allow_image_hosts
    if not any(p.lower() == host or glob_match(p.lower(), host) for p in patterns):
        raise InputError(
            f"extra specs: image_remote.addr: host {host} is {_REFUSED} (allow it with "
            f'[pool_policy] allow_image_hosts = ["{host}"], {declare})'
        )


def _specs_error(refused: _Refused) -> InputError:
    text = f"extra specs: {refused.path}: {refused.problem}"
    if refused.entry:
        text += f" (allow it with [pool_policy] {refused.entry} = [{_toml_string(refused.value)}])"
    return InputError(text)


def _profile_error(profile: str, refused: _Refused) -> InputError:
    return InputError(
        f"extra specs: profile {_quote(profile)}: {refused.path}: {refused.problem} "
        f"(allow it with [pool_policy] allow_profiles = [{_toml_string(profile)}])"
    )


def _quote(text: str) -> str:
    """A value or profile name in a message: quoted, escaped, and cut short when long."""
    shown = text if len(text) <= 60 else text[:57] + "..."
    return _toml_string(shown)


def _show(name: str) -> str:
    # Names come from the pool: keep the message on one line, and make space tricks visible.
    if name and name.isprintable() and name == name.strip() and " " not in name:
        return name
    return ascii(name)


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'
