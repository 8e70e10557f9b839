"""The LXD host's own addresses, as its API reports them (for `setup`'s egress ACL).

Read without exec: `GET /1.0` (`environment.addresses`, what the API listens on) and the state
of every network the server lists (`GET /1.0/networks/<name>/state`), on every cluster member.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pylxd

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def host_addresses(client: pylxd.Client) -> list[Address]:
    """Every global address of the server's host (all members of a cluster), sorted."""
    from pylxd.exceptions import NotFound

    from .pylxd_client import api_node, metadata

    found: set[Address] = set()
    environment = client.host_info.get("environment") or {}
    for listen in _strings(environment.get("addresses")):
        _add(found, _strip_port(listen))
    targets: list[dict[str, str]] = [{}]
    if environment.get("server_clustered"):
        members = metadata(api_node(client, "cluster", "members").get()) or []
        targets = [{"target": _last_segment(member)} for member in _strings(members)]
    for target in targets:
        names = metadata(api_node(client, "networks").get(params=dict(target))) or []
        for url in _strings(names):
            node = api_node(client, "networks", _last_segment(url), "state")
            try:
                state = metadata(node.get(params=dict(target)))
            except NotFound:  # the interface went away since the listing
                continue
            for entry in (state or {}).get("addresses") or []:
                if isinstance(entry, dict) and entry.get("scope") == "global":
                    _add(found, str(entry.get("address", "")))
    return sorted(found, key=lambda address: (address.version, int(address)))


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _last_segment(url: str) -> str:
    """`/1.0/networks/<name>` -> name (decoded: api_node encodes it again)."""
    from urllib.parse import unquote

    return unquote(url.rstrip("/").rsplit("/", 1)[-1])


def _strip_port(listen: str) -> str:
    """`[2001:db8::1]:8443` -> 2001:db8::1, `192.0.2.1:8443` -> 192.0.2.1."""
    if listen.startswith("["):
        return listen[1:].split("]", 1)[0]
    return listen.rsplit(":", 1)[0] if listen.count(":") == 1 else listen


def _add(found: set[Address], text: str) -> None:
    """Keep text when it is a routable unicast address (what the server says is only data)."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return
    if address.is_unspecified or address.is_multicast or address.is_loopback:
        return
    if address.is_link_local:
        return
    found.add(address)
