"""Pool policy: what a pool's extra specs may ask of LXD, deny by default beyond a safe set.

Whoever can edit a GARM pool writes its extra specs. Anything that reaches past the instance to
the LXD host (privileged containers, raw LXC/QEMU settings, host paths and host devices, other
projects, unverified image servers) is refused unless the operator's `[pool_policy]` allows it.
"""

from __future__ import annotations

from .errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .config import Config, ImageRemote, PoolPolicy
    from .specs import ExtraSpecs

# Instance config families a pool may set without an allowance: resource limits and settings
# that stay inside the instance. Everything else (security.privileged, security.idmap.*, raw.*,
# linux.*, nvidia.*, security.devlxd*, other security.syscalls.*, agent.*, ...) needs
# allow_config. The two syscall intercepts are the ones LXD documents as safe (a fixed list of
# device nodes, a fixed list of overlayfs attributes) and that Docker inside a runner uses.
SAFE_CONFIG = (
    "limits.*",
    "boot.*",
    "migration.*",
    "snapshots.*",
    "environment.*",
    "user.*",
    "cluster.evacuate",
    "security.nesting",
    "security.syscalls.intercept.mknod",
    "security.syscalls.intercept.setxattr",
)

# Device keys a pool may set on a disk from a storage pool (a root disk override or a custom
# volume) and on a NIC on a managed network. Other keys (raw.mount.options, propagation,
# ceph.*, nictype, parent, vlan, security.acls, ipv4.routes.*, ...) reach the host or widen
# the network, and need the device type in allow_device_types.
_DISK_KEYS = frozenset(
    {"type", "path", "pool", "source", "size", "size.state", "readonly", "required"}
    | {"boot.priority", "limits.read", "limits.write", "limits.max", "io.bus", "io.cache"}
)
_NIC_KEYS = frozenset(
    {"type", "name", "network", "hwaddr", "mtu", "ipv4.address", "ipv6.address"}
    | {"boot.priority", "limits.ingress", "limits.egress", "limits.max", "limits.priority"}
    | {"security.mac_filtering", "security.ipv4_filtering", "security.ipv6_filtering"}
    | {"security.port_isolation"}
)
_REFUSED = "not allowed by the provider's pool policy"


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


def enforce_project_policy(config: Config, specs: ExtraSpecs) -> None:
    """Raise InputError when the specs name a project the config's pool policy does not allow."""
    if specs.project is not None:
        _check_project(specs.project, config.project_name or "default", config.pool_policy)


def enforce_pool_policy(config: Config, specs: ExtraSpecs) -> None:
    """Raise InputError naming the first extra spec the config's pool policy does not allow."""
    policy = config.pool_policy
    enforce_project_policy(config, specs)
    for key in specs.config:
        _check_config_key(key, policy)
    for name, device in specs.devices.items():
        _check_device(name, device, policy)
    if specs.image_remote is not None:
        _check_image_remote(specs.image_remote, config)


def config_key_allowed(key: str, policy: PoolPolicy) -> bool:
    """Whether a pool may set this instance config key (reserved keys are refused elsewhere)."""
    return any(glob_match(pattern, key) for pattern in SAFE_CONFIG + policy.allow_config)


def _check_project(project: str, own: str, policy: PoolPolicy) -> None:
    if project != own and project not in policy.allow_projects:
        raise _refuse(
            "project", f"project {_show(project)} is {_REFUSED}", project, "allow_projects"
        )


def _check_config_key(key: str, policy: PoolPolicy) -> None:
    if not config_key_allowed(key, policy):
        raise _refuse(f"config.{_show(key)}", _REFUSED, key, "allow_config")


def _check_device(name: str, device: Mapping[str, str], policy: PoolPolicy) -> None:
    kind = device.get("type", "")
    if kind in policy.allow_device_types:
        return
    path = f"devices.{_show(name)}"
    if kind == "disk":
        if "source" in device and "pool" not in device:
            # Without a storage pool the source is the host's: a path, or a ceph/cephfs mount.
            problem = f"a host source (a disk without a pool) is {_REFUSED}"
            raise _refuse(f"{path}.source", problem, kind, "allow_device_types")
        allowed = _DISK_KEYS
    elif kind == "nic":
        if "nictype" in device or "parent" in device or "network" not in device:
            problem = f"a NIC on a host interface (not a managed network) is {_REFUSED}"
            raise _refuse(path, problem, kind, "allow_device_types")
        allowed = _NIC_KEYS
    elif kind == "none":
        allowed = frozenset({"type"})
    else:
        raise _refuse(path, f"device type {_show(kind)} is {_REFUSED}", kind, "allow_device_types")
    for key in device:
        if key not in allowed:
            raise _refuse(
                f"{path}.{_show(key)}", f"{_REFUSED} on a {kind} device", kind, "allow_device_types"
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


def _refuse(path: str, problem: str, value: str, entry: str) -> InputError:
    return InputError(
        f"extra specs: {path}: {problem} "
        f"(allow it with [pool_policy] {entry} = [{_toml_string(value)}])"
    )


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
