"""Plain-Python reference of the instance conversion in rust/src/instances.rs.

tests/test_native_instances.py holds the extension to it; benches/bench_native.py times it as
the Python baseline. The list of Linux image names is the extension's own (one home).
"""

from __future__ import annotations

from typing import Any

from garm_provider_lxd._native import LINUX_DISTROS

GARM_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}
GARM_STATUS = {"Running": "running", "Stopped": "stopped", "Error": "error"}
_LINUX = frozenset(LINUX_DISTROS)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _nonempty(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _global_addresses(network: dict[str, Any]) -> list[str]:
    v4: list[str] = []
    v6: list[str] = []
    for nic_name, nic in network.items():
        addresses = _dict(nic).get("addresses")
        if nic_name == "lo" or not isinstance(addresses, list):
            continue
        for entry in map(_dict, addresses):
            address, family = _text(entry.get("address")), entry.get("family")
            if not address or entry.get("scope") != "global":
                continue
            is_v6 = family == "inet6" if family in ("inet", "inet6") else ":" in address
            (v6 if is_v6 else v4).append(address)
    return v4 + v6


def _tags(instance: dict[str, Any]) -> Any:
    config, expanded = _dict(instance.get("config")), _dict(instance.get("expanded_config"))

    def tag(key: str) -> str | None:
        return _nonempty(config.get(key)) or _nonempty(expanded.get(key))

    return tag


def provider_instance(instance: dict[str, Any], state: Any) -> dict[str, Any]:
    """The ProviderInstance of one decoded LXD instance (and its state, if any)."""
    tag = _tags(instance)
    name = _text(instance.get("name")) or ""
    image_os = tag("image.os") or ""
    if image_os.lower() == "windows":
        os_type = "windows"
    elif image_os.lower() in _LINUX:
        os_type = "linux"
    else:
        os_type = tag("user.os-type") or "unknown"
    arch = _text(instance.get("architecture")) or ""
    state = state if isinstance(state, dict) else None
    status = (state and _nonempty(state.get("status"))) or _nonempty(instance.get("status"))
    addresses = _global_addresses(_dict(state.get("network"))) if state else []
    return {
        "provider_id": name,
        "name": name,
        "os_type": os_type,
        "os_name": image_os,
        "os_version": tag("image.release") or "",
        "os_arch": tag("user.os-arch") or GARM_ARCH.get(arch, arch),
        "addresses": [{"address": a, "type": "public"} for a in addresses],
        "status": GARM_STATUS.get(status or "", "unknown"),
    }


def provider_instances(
    items: list[Any], controller_id: str, pool_id: str | None
) -> list[dict[str, Any]]:
    """The ProviderInstances of controller_id (and pool_id) among decoded instances."""
    selected = []
    for instance in items:
        if not isinstance(instance, dict) or not _nonempty(instance.get("name")):
            continue
        tag = _tags(instance)
        if tag("user.runner-controller-id") != controller_id:
            continue
        if pool_id is not None and tag("user.runner-pool-id") != pool_id:
            continue
        selected.append(provider_instance(instance, instance.get("state")))
    return selected
