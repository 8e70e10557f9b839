"""`garm-provider-lxd setup`: an isolated project, bridge, egress ACL and runner profile."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ..config import Config
from ..errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pylxd

    from .host_addresses import Address

# Where runners must not reach: the host's and the LAN's private and link-local ranges.
BLOCKED_RANGES = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "fc00::/7",
    "fe80::/10",
)


# Copy-on-write drivers setup can make a loop-backed pool with, in the order it proposes them.
COW_DRIVERS = ("btrfs", "zfs", "lvm")
# Bounds of --storage-size: room for an image and a few runners, and no typo that reserves a
# loop file the host's disk cannot back (the file is sparse: runners fill it as they write).
MIN_STORAGE_BYTES = 1 << 30
MAX_STORAGE_BYTES = 64 << 40
_SIZE_UNITS = {
    "MiB": 1 << 20,
    "GiB": 1 << 30,
    "TiB": 1 << 40,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
}
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
PROPOSED_POOL = "garm-runners"
# The config key setup puts on the project, ACL, network and profile it creates: it changes an
# existing object only when the object carries it (one it made, or one an operator handed over).
MANAGED_KEY = "user.garm-provider-lxd.setup"
MANAGED_VALUE = "managed"
# Setup's own rules in its ACL start their description with this; other rules stay as they are.
RULE_PREFIX = "garm-provider-lxd setup: "


@dataclass(frozen=True)
class SetupOptions:
    """What `setup` creates, named on the command line."""

    network: str
    subnet: str
    acl: str
    profile: str
    storage_pool: str
    nesting: bool
    storage_driver: str = ""  # create storage_pool with this driver when it is missing
    storage_size: str = ""  # its loop file's size; LXD's default when empty


@dataclass(frozen=True)
class Desired:
    """One LXD object and the fields this command manages on it."""

    kind: str
    name: str
    collection: str  # the API collection under /1.0
    fields: dict[str, Any]
    in_project: bool = False  # lives in the runners' project (else server-wide)
    on_create: dict[str, Any] = field(default_factory=dict)  # set only when creating it
    fixed: tuple[str, ...] = ()  # fields LXD cannot change on an existing object
    detail: str = ""  # said after "create <kind> <name>"
    marked: bool = True  # carries MANAGED_KEY (else never changed once it exists)


def storage_size_bytes(size: str) -> int:
    """Bytes of a --storage-size such as 30GiB; InputError when it is not one within bounds."""
    number = size.rstrip("KMGTiB")
    unit = _SIZE_UNITS.get(size[len(number) :])
    if not number.isdecimal() or not number.isascii() or unit is None:
        raise InputError(
            f"--storage-size {size!r}: expected a whole number of MiB, GiB or TiB "
            "(or MB, GB, TB), e.g. 30GiB"
        )
    total = int(number) * unit
    if not MIN_STORAGE_BYTES <= total <= MAX_STORAGE_BYTES:
        raise InputError(f"--storage-size {size!r}: must be between 1GiB and 64TiB")
    return total


def validate_options(options: SetupOptions) -> None:
    """Refuse options that cannot give a working setup, before anything is read or changed."""
    if "/" not in options.subnet:
        raise InputError(f"--subnet {options.subnet!r}: expected an address with a prefix length")
    if options.storage_driver and options.storage_driver not in COW_DRIVERS:
        raise InputError(
            f"--storage-driver {options.storage_driver!r}: use one of {', '.join(COW_DRIVERS)}"
        )
    if options.storage_size:
        if not options.storage_driver:
            raise InputError(
                "--storage-size needs --storage-driver: setup sizes only the pools it creates"
            )
        storage_size_bytes(options.storage_size)
    name = options.storage_pool
    if not name or not _NAME_CHARS.issuperset(name) or name[0] in "-." or len(name) > 63:
        raise InputError(
            f"--storage-pool {name!r}: use up to 63 letters, digits, '-', '_' or '.', "
            "not starting with '-' or '.'"
        )


def egress_rules(host: Sequence[Address] = ()) -> list[dict[str, str]]:
    """The ACL's egress rules: reject the private ranges and the LXD host's own addresses."""
    rules = [
        {
            "action": "reject",
            "destination": ",".join(BLOCKED_RANGES),
            "state": "enabled",
            "description": f"{RULE_PREFIX}private and link-local ranges",
        }
    ]
    blocked = [ipaddress.ip_network(cidr) for cidr in BLOCKED_RANGES]
    public = [str(a) for a in host if not any(_inside(a, net) for net in blocked)]
    if public:
        rules.append(
            {
                "action": "reject",
                "destination": ",".join(public),
                "state": "enabled",
                "description": f"{RULE_PREFIX}the LXD host's own addresses",
            }
        )
    return rules


def _inside(address: Address, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return address.version == network.version and address in network


def desired_objects(
    config: Config, options: SetupOptions, host: Sequence[Address] = ()
) -> list[Desired]:
    """Return the objects `setup` manages, in creation order (host: the host's addresses)."""
    validate_options(options)
    objects = []
    project = config.project_name
    if project and project != "default":
        objects.append(
            Desired(
                "project",
                project,
                "projects",
                {
                    "config": {
                        MANAGED_KEY: MANAGED_VALUE,
                        "features.images": "false",
                        "features.profiles": "true",
                        "features.networks": "false",
                        "features.storage.volumes": "false",
                    },
                    "description": "GARM runners",
                },
            )
        )
    if options.storage_driver:
        objects.append(_storage_pool(options))
    objects.append(
        Desired(
            "network ACL",
            options.acl,
            "network-acls",
            {
                "config": {MANAGED_KEY: MANAGED_VALUE},
                "egress": egress_rules(host),
                # None of its own: here so that an update keeps the operator's (LXD's ACL
                # PATCH replaces what the body leaves out).
                "ingress": [],
                "description": "GARM runners: no private ranges, not the host",
            },
        )
    )
    objects.append(
        Desired(
            "network",
            options.network,
            "networks",
            {
                "type": "bridge",
                "config": {
                    MANAGED_KEY: MANAGED_VALUE,
                    "ipv4.address": options.subnet,
                    "ipv4.nat": "true",
                    "ipv6.address": "none",
                    "security.acls": options.acl,
                    "security.acls.default.egress.action": "allow",
                    "security.acls.default.ingress.action": "reject",
                },
                "description": "GARM runners",
            },
        )
    )
    objects.append(
        Desired(
            "profile",
            options.profile,
            "profiles",
            {
                "config": {
                    MANAGED_KEY: MANAGED_VALUE,
                    "security.nesting": "true" if options.nesting else "false",
                    "security.privileged": "false",
                },
                "devices": {
                    "root": {"type": "disk", "path": "/", "pool": options.storage_pool},
                    "eth0": {"type": "nic", "name": "eth0", "network": options.network},
                },
                "description": "GARM runners",
            },
            in_project=True,
        )
    )
    return objects


def _storage_pool(options: SetupOptions) -> Desired:
    """The loop-backed copy-on-write pool of --storage-driver (never changed once it exists)."""
    config = {"size": options.storage_size} if options.storage_size else {}
    if options.storage_driver == "lvm":
        config["lvm.use_thinpool"] = "true"  # thin snapshots: clones, not copies
    size = options.storage_size or "LXD's default size"
    return Desired(
        "storage pool",
        options.storage_pool,
        "storage-pools",
        {"driver": options.storage_driver},
        on_create={"config": config, "description": "GARM runners"},
        fixed=("driver",),
        detail=f" ({options.storage_driver} on a loop file of {size})",
        marked=False,
    )


def _matches(have: object, want: object) -> bool:
    """Whether `have` carries everything `want` asks for (the server adds defaults)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_matches(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(have) == len(want)
            and all(_matches(h, w) for h, w in zip(have, want, strict=True))
        )
    return have == want


def _own_rules(rules: object) -> list[Any]:
    """The ACL rules setup wrote (by their description); the operator's own are left alone."""
    if not isinstance(rules, list):
        return []
    return [r for r in rules if isinstance(r, dict) and _is_own_rule(r)]


def _is_own_rule(rule: dict[str, Any]) -> bool:
    return str(rule.get("description", "")).startswith(RULE_PREFIX)


def _differences(current: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    changed = []
    for key, value in fields.items():
        if key in ("config", "devices"):
            have = current.get(key) or {}
            changed += [f"{key}.{k}" for k, v in value.items() if not _matches(have.get(k), v)]
        elif key in ("egress", "ingress"):
            if not _matches(_own_rules(current.get(key)), value):
                changed.append(key)
        elif not _matches(current.get(key), value):
            changed.append(key)
    return changed


def _patch(current: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The PATCH body: fields merged into what the object has (the operator's ACL rules kept)."""
    patch: dict[str, Any] = {}
    for key, value in fields.items():
        have = current.get(key)
        if key in ("egress", "ingress"):
            others = [r for r in have or [] if not (isinstance(r, dict) and _is_own_rule(r))]
            patch[key] = [*value, *others]
        elif isinstance(value, dict):
            patch[key] = {**(have or {}), **value}
        else:
            patch[key] = value
    return patch


def _is_managed(current: dict[str, Any]) -> bool:
    """Whether an existing object is setup's to change (it carries MANAGED_KEY)."""
    return (current.get("config") or {}).get(MANAGED_KEY) == MANAGED_VALUE


def _unmanaged_fields(obj: Desired) -> dict[str, Any]:
    """What an object setup does not manage must already have: its fields but the marker and
    the description (a label, not a setting)."""
    fields = {k: v for k, v in obj.fields.items() if k != "description"}
    if isinstance(fields.get("config"), dict):
        fields["config"] = {k: v for k, v in fields["config"].items() if k != MANAGED_KEY}
    return fields


def _check_not_foreign(obj: Desired, current: dict[str, Any] | None) -> None:
    """Refuse to change an existing object setup did not create (nor was handed)."""
    if current is None or not obj.marked or _is_managed(current):
        return
    changed = _differences(current, _unmanaged_fields(obj))
    if changed:
        raise InputError(
            f"{obj.kind} {obj.name} exists and is not setup's (no {MANAGED_KEY}); it differs in "
            f"{_describe(current, obj.fields, changed)}: setup changes nothing it did not "
            f"create; choose another name, or see docs/security.md#existing-objects"
        )


def _describe(current: dict[str, Any], fields: dict[str, Any], changed: list[str]) -> str:
    """`config.ipv4.address 10.161.0.1/24 (wanted 10.210.0.1/24), egress` for a refusal."""
    parts = []
    for path in changed:
        section, _, key = path.partition(".")
        want = fields.get(section)
        have = current.get(section)
        if key and isinstance(want, dict) and isinstance(want.get(key), str):
            value = (have or {}).get(key) if isinstance(have, dict) else None
            shown = "unset" if value is None else str(value)[:60]
            parts.append(f"{path} {shown} (wanted {want[key]})")
        else:
            parts.append(path)
    return ", ".join(parts)


def run_setup(config: Config, options: SetupOptions, out: IO[str], *, apply: bool) -> int:
    """Show (or with apply, make) the changes that bring the server to the desired state."""
    from .host_addresses import host_addresses
    from .pylxd_client import connect, lxd_errors

    desired_objects(config, options)  # bad options fail before any connection
    # One connection outside any project: projects, pools, ACLs and networks are server-wide
    # (a project without features.networks uses the default one's); profiles name the project.
    client = connect(config._replace(project_name=""))
    project = {"project": config.project_name} if config.project_name else {}
    with lxd_errors("setup"):
        objects = desired_objects(config, options, host_addresses(client))
        supported = _supported_drivers(client)
        _check_driver(options, supported)
        # Read everything before changing anything: a refusal leaves the server as it was.
        plan = [(obj, _current(client, obj, project if obj.in_project else {})) for obj in objects]
        for obj, current in plan:
            _check_fixed(obj, current)
            _check_not_foreign(obj, current)
        root_driver = options.storage_driver or _existing_pool_driver(client, options.storage_pool)
        pending = 0
        for obj, current in plan:
            pending += _bring(client, obj, current, project if obj.in_project else {}, out, apply)
    if root_driver == "dir":
        out.write(_dir_note(options.storage_pool, supported))
    if not pending:
        out.write("nothing to do\n")
    elif not apply:
        out.write(f"{pending} change(s) planned; run again with --apply to make them\n")
    else:
        out.write(f"{pending} change(s) made\n")
    return 0


def _supported_drivers(client: pylxd.Client) -> list[str] | None:
    """The storage drivers the server can use (None when it does not say)."""
    drivers = (client.host_info.get("environment") or {}).get("storage_supported_drivers")
    if not isinstance(drivers, list):
        return None
    return [str(item.get("Name")) for item in drivers if isinstance(item, dict)]


def _check_driver(options: SetupOptions, supported: list[str] | None) -> None:
    driver = options.storage_driver
    if driver and supported is not None and driver not in supported:
        raise InputError(
            f"--storage-driver {driver}: this server does not support it "
            f"(it supports: {', '.join(supported) or 'none'})"
        )


def _current(client: pylxd.Client, obj: Desired, params: dict[str, str]) -> dict[str, Any] | None:
    """The object as the server has it, or None when it does not exist."""
    from pylxd.exceptions import NotFound

    from ..lxd import quote
    from .pylxd_client import api_node, metadata

    node = api_node(client, obj.collection, obj.name)
    for attempt in range(3):
        try:
            return metadata(node.get(params=dict(params))) or {}
        except NotFound:
            # LXD 5.0.2 answers 404 for an ACL that exists when a network is deleted while it
            # computes the ACL's users ("Failed getting ACL usage"): the listing says which.
            try:
                listed = metadata(api_node(client, obj.collection).get(params=dict(params)))
            except NotFound:  # e.g. the profile's project does not exist (yet)
                return None
            names = {str(url).split("?", 1)[0].rsplit("/", 1)[-1] for url in listed or []}
            if quote(obj.name) not in names:
                return None
            time.sleep(0.2 * (attempt + 1))
    return metadata(node.get(params=dict(params))) or {}


def _check_fixed(obj: Desired, current: dict[str, Any] | None) -> None:
    if current is None:
        return
    for key in obj.fixed:
        if not _matches(current.get(key), obj.fields[key]):
            raise InputError(
                f"{obj.kind} {obj.name} exists with {key} {current.get(key)}, not "
                f"{obj.fields[key]}; setup never changes that: name another {obj.kind}"
            )


def _existing_pool_driver(client: pylxd.Client, name: str) -> str:
    from pylxd.exceptions import NotFound

    from .pylxd_client import api_node, metadata

    try:
        return str((metadata(api_node(client, "storage-pools", name).get()) or {}).get("driver"))
    except NotFound:
        raise InputError(
            f"--storage-pool {name}: no such storage pool; name an existing one, or add "
            f"--storage-driver {'|'.join(COW_DRIVERS)} to create it"
        ) from None


def _bring(
    client: pylxd.Client,
    obj: Desired,
    current: dict[str, Any] | None,
    params: dict[str, str],
    out: IO[str],
    apply: bool,
) -> int:
    """Print (and with apply, make) the change obj needs; return how many changes that is."""
    from .pylxd_client import api_node, lxd_errors, wait_for_operation

    if current is None:
        out.write(f"create {obj.kind} {obj.name}{obj.detail}\n")
        if apply:
            body = {"name": obj.name, **obj.on_create, **obj.fields}
            with lxd_errors(f"create {obj.kind} {obj.name}"):
                response = api_node(client, obj.collection).post(json=body, params=dict(params))
                wait_for_operation(client, response)
        return 1
    if obj.marked and not _is_managed(current):
        out.write(f"ok     {obj.kind} {obj.name} is as wanted (not setup's: left as it is)\n")
        return 0  # _check_not_foreign found nothing to change
    changed = _differences(current, obj.fields)
    if not changed:
        out.write(f"ok     {obj.kind} {obj.name} is as wanted\n")
        return 0
    out.write(f"update {obj.kind} {obj.name}: {', '.join(changed)}\n")
    if apply:
        patch = _patch(current, obj.fields)
        with lxd_errors(f"update {obj.kind} {obj.name}"):
            node = api_node(client, obj.collection, obj.name)
            wait_for_operation(client, node.patch(json=patch, params=dict(params)))
    return 1


def _dir_note(pool: str, supported: list[str] | None) -> str:
    cow = [driver for driver in COW_DRIVERS if supported is None or driver in supported]
    how = (
        f"add --storage-pool {PROPOSED_POOL} --storage-driver {cow[0]} to make one"
        if cow
        else f"this server supports none ({', '.join(COW_DRIVERS)})"
    )
    return (
        f"note   storage pool {pool} (driver dir) holds the runners' root disks: LXD unpacks "
        f"the whole image for every runner, a copy-on-write pool clones it; {how}\n"
    )
