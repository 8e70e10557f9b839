"""`garm-provider-lxd setup`: an isolated project, bridge, egress ACL and runner profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from .config import Config
from .errors import InputError, NotFoundError
from .lxd import quote

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


@dataclass(frozen=True)
class SetupOptions:
    """What `setup` creates, named on the command line."""

    network: str
    subnet: str
    acl: str
    profile: str
    storage_pool: str
    nesting: bool


@dataclass(frozen=True)
class Desired:
    """One LXD object and the fields this command manages on it."""

    kind: str
    name: str
    collection: str
    fields: dict[str, Any]


def desired_objects(config: Config, options: SetupOptions) -> list[Desired]:
    """Return the objects `setup` manages, in creation order."""
    if "/" not in options.subnet:
        raise InputError(f"--subnet {options.subnet!r}: expected an address with a prefix length")
    objects = []
    project = config.project_name
    if project and project != "default":
        objects.append(
            Desired(
                "project",
                project,
                "/1.0/projects",
                {
                    "config": {
                        "features.images": "false",
                        "features.profiles": "true",
                        "features.networks": "false",
                        "features.storage.volumes": "false",
                    },
                    "description": "GARM runners",
                },
            )
        )
    egress = [
        {"action": "reject", "destination": ",".join(BLOCKED_RANGES), "state": "enabled"},
    ]
    objects.append(
        Desired(
            "network ACL",
            options.acl,
            "/1.0/network-acls",
            {"egress": egress, "ingress": [], "description": "GARM runners: no private ranges"},
        )
    )
    objects.append(
        Desired(
            "network",
            options.network,
            "/1.0/networks",
            {
                "type": "bridge",
                "config": {
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
            "/1.0/profiles",
            {
                "config": {
                    "security.nesting": "true" if options.nesting else "false",
                    "security.privileged": "false",
                },
                "devices": {
                    "root": {"type": "disk", "path": "/", "pool": options.storage_pool},
                    "eth0": {"type": "nic", "name": "eth0", "network": options.network},
                },
                "description": "GARM runners",
            },
        )
    )
    return objects


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


def _differences(current: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    changed = []
    for key, value in fields.items():
        if key in ("config", "devices"):
            have = current.get(key) or {}
            changed += [f"{key}.{k}" for k, v in value.items() if not _matches(have.get(k), v)]
        elif not _matches(current.get(key), value):
            changed.append(key)
    return changed


def run_setup(config: Config, options: SetupOptions, out: IO[str], *, apply: bool) -> int:
    """Show (or with apply, make) the changes that bring the server to the desired state."""
    from .lxd import Lxd

    lxd = Lxd(config)
    pending = 0
    for obj in desired_objects(config, options):
        # Projects live outside any project; profiles live in the runners' project.
        in_project = obj.kind == "profile"
        path = f"{obj.collection}/{quote(obj.name, safe='')}"
        full = lxd.path(path) if in_project else path
        try:
            current = lxd.call("GET", full).get("metadata") or {}
        except NotFoundError:
            current = None
        if current is None:
            pending += 1
            out.write(f"create {obj.kind} {obj.name}\n")
            if apply:
                body = {"name": obj.name, **obj.fields}
                collection = lxd.path(obj.collection) if in_project else obj.collection
                lxd.wait(lxd.call("POST", collection, body), f"create {obj.kind} {obj.name}")
            continue
        changed = _differences(current, obj.fields)
        if not changed:
            out.write(f"ok     {obj.kind} {obj.name} is as wanted\n")
            continue
        pending += 1
        out.write(f"update {obj.kind} {obj.name}: {', '.join(changed)}\n")
        if apply:
            patch = {
                key: {**(current.get(key) or {}), **value} if isinstance(value, dict) else value
                for key, value in obj.fields.items()
            }
            lxd.wait(lxd.call("PATCH", full, patch), f"update {obj.kind} {obj.name}")
    if not pending:
        out.write("nothing to do\n")
    elif not apply:
        out.write(f"{pending} change(s) planned; run again with --apply to make them\n")
    else:
        out.write(f"{pending} change(s) made\n")
    return 0
