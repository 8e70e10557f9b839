"""`garm-provider-lxd status`: the provider's runner instances, and which look stuck or leaked."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from ..config import instance_projects
from ..errors import EXIT_OK, InputError
from ..instances import (
    REMOVE_ALL_CONCURRENCY,
    TAG_CONTROLLER,
    TAG_POOL,
    is_garm_id,
    listing_filter,
)
from ..messages import for_terminal
from .pylxd_client import connect, lxd_errors, project_api

if TYPE_CHECKING:
    import pylxd

    from ..config import Config

# When a runner looks stuck or leaked (see docs/operating-runners.md).
NOT_RUNNING_AFTER_SECONDS = 30 * 60
NO_ADDRESS_AFTER_SECONDS = 10 * 60
FLAG_NOT_RUNNING = "not-running-over-30m"
FLAG_NO_ADDRESS = "no-address-over-10m"
FLAG_OTHER_CONTROLLER = "other-controller"
# LXD lists an instance on a cluster member it cannot reach with status Error and no config:
# its owner cannot be read.
FLAG_UNREACHABLE = "member-unreachable"
RUNNING = "Running"


@dataclass(frozen=True)
class Runner:
    """One instance tagged by the provider, as status shows it."""

    name: str
    project: str
    controller_id: str
    pool_id: str
    status: str
    created_at: str
    age_seconds: int
    ipv4: tuple[str, ...]
    image: str
    location: str
    flags: tuple[str, ...] = ()


def validate_id(option: str, value: str) -> None:
    """Refuse a controller or pool id that is not a GARM id (UUIDs; letters, digits, -, _, .)."""
    if value and not is_garm_id(value):
        raise InputError(f"{option}: {value!r} is not a GARM id (letters, digits, '-', '_', '.')")


def list_runners(
    client: pylxd.Client,
    config: Config,
    *,
    controller_id: str = "",
    pool_id: str = "",
    addresses: bool = True,
) -> list[Runner]:
    """The provider's instances in every project runners may live in, filtered by the ids given.

    One listing request per project (recursion=1, filtered by the server where it can). When
    addresses are wanted and the listing cannot carry them (LXD before 6.7), they come from the
    DHCP leases of the managed networks (one request per network and project), and only a
    running runner with no lease (a NIC on an unmanaged network) costs a state request.
    """
    from pylxd.exceptions import NotFound

    selective = client.has_api_extension("instances_state_selective_recursion")
    query = {"recursion": "2;fields=state.network" if addresses and selective else "1"}
    wanted = {TAG_CONTROLLER: controller_id, TAG_POOL: pool_id}
    clause = listing_filter({key: value for key, value in wanted.items() if value})
    if clause and client.has_api_extension("api_filtering"):
        query["filter"] = clause  # unreadable instances (FLAG_UNREACHABLE) too
    found: list[tuple[Any, str, dict[str, Any]]] = []
    for index, project in enumerate(instance_projects(config)):
        api = project_api(client, project)
        with lxd_errors(f"list instances in project {project or 'default'}"):
            try:
                items = api.instances.get(params=dict(query)).json()["metadata"] or []
            except NotFound:
                if index == 0:
                    raise InputError(f"project {project!r} does not exist on the server") from None
                continue  # an allowed project that does not exist (yet) holds no runners
        for item in items:
            tags = item.get("config") or {}
            if unreadable(item):
                found.append((api, project, item))
                continue
            if TAG_CONTROLLER not in tags:
                continue  # not made by this provider
            if any(value and tags.get(key) != value for key, value in wanted.items()):
                continue  # the server may not filter (no api_filtering)
            found.append((api, project, item))
    # The listing's own state (LXD >= 6.7) or nothing; replaced below on older servers.
    ipv4s = [_ipv4(item.get("state")) for _, _, item in found]
    if addresses and not selective:
        running = [i for i, (_, _, item) in enumerate(found) if item.get("status") == RUNNING]
        leased = _leased_addresses(client, {project for _, project, _ in found}) if running else {}
        for i in running:
            ipv4s[i] = tuple(sorted(leased.get((found[i][1], found[i][2].get("name")), ())))
        unleased = [i for i in running if not ipv4s[i]]
        for i, state in zip(unleased, _states([found[i] for i in unleased]), strict=True):
            ipv4s[i] = _ipv4(state)
    now = time.time()
    return [
        _runner(item, project=project, ipv4=ipv4s[i], now=now)
        for i, (_, project, item) in enumerate(found)
    ]


def unreadable(item: dict[str, Any]) -> bool:
    """Whether a listed instance lives on a cluster member LXD cannot reach."""
    return item.get("status") == "Error" and not item.get("config")


def unreachable_members(runners: list[Runner]) -> dict[str, int]:
    """Member -> how many listed instances on it could not be read."""
    return dict(Counter(r.location or "?" for r in runners if FLAG_UNREACHABLE in r.flags))


def _leased_addresses(client: pylxd.Client, projects: set[str]) -> dict[tuple[str, Any], list[str]]:
    """IPv4 addresses by (project, instance name) from the managed networks' DHCP leases."""
    from pylxd.exceptions import LXDAPIException
    from requests import RequestException

    from ..lxd import quote

    leased: dict[tuple[str, Any], list[str]] = {}
    for project in sorted(projects):
        api = project_api(client, project)
        try:
            networks = api.networks.get(params={"recursion": "1"}).json()["metadata"] or []
            for network in networks:
                if not network.get("managed"):
                    continue
                node = api.networks[quote(str(network.get("name")), safe="")].leases
                for lease in node.get().json()["metadata"] or []:
                    address = str(lease.get("address") or "")
                    if address and ":" not in address:
                        leased.setdefault((project, lease.get("hostname")), []).append(address)
        except (LXDAPIException, RequestException, ValueError, KeyError):
            continue  # this project's runners fall back to their state requests
    return leased


def _states(targets: list[tuple[Any, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """GET .../state of each target instance, a bounded number at a time."""
    from pylxd.exceptions import LXDAPIException
    from requests import RequestException

    def state(target: tuple[Any, str, dict[str, Any]]) -> dict[str, Any]:
        api, _, item = target
        try:
            return dict(api.instances[item["name"]].state.get().json()["metadata"] or {})
        except (LXDAPIException, RequestException, ValueError, KeyError):
            return {}  # gone or stopped since the listing: shown without an address

    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(REMOVE_ALL_CONCURRENCY, len(targets))) as pool:
        return list(pool.map(state, targets))


def _ipv4(state: dict[str, Any] | None) -> tuple[str, ...]:
    """The global IPv4 addresses of an instance state's NICs (the GARM commands' rule)."""
    from .._native import json_dumps, state_ipv4

    return tuple(state_ipv4(json_dumps(state))) if state else ()


def _runner(item: dict[str, Any], *, project: str, ipv4: tuple[str, ...], now: float) -> Runner:
    tags = item.get("config") or {}
    created_at = str(item.get("created_at") or "")
    age = max(0, int(now - _timestamp(created_at))) if created_at else 0
    image = tags.get("image.description") or str(tags.get("volatile.base_image") or "")[:12]
    location = str(item.get("location") or "")
    return Runner(
        name=str(item.get("name") or ""),
        project=project or "default",
        controller_id=str(tags.get(TAG_CONTROLLER) or ""),
        pool_id=str(tags.get(TAG_POOL) or ""),
        status=str(item.get("status") or ""),
        created_at=created_at,
        age_seconds=age,
        ipv4=ipv4,
        image=str(image),
        location="" if location == "none" else location,
    )


def _timestamp(text: str) -> float:
    """Seconds since the epoch of an LXD time stamp (RFC 3339 with nanoseconds)."""
    head, dot, rest = text.partition(".")
    if dot:  # keep microseconds: fromisoformat takes at most six digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()  # unknown age: never flagged as old


def flagged(runner: Runner, controller_id: str) -> Runner:
    """runner with the reasons it looks stuck or leaked."""
    if not runner.controller_id:  # only unreadable instances lack the tag (list_runners)
        return Runner(**{**asdict(runner), "flags": (FLAG_UNREACHABLE,)})
    flags = []
    if runner.status != RUNNING and runner.age_seconds > NOT_RUNNING_AFTER_SECONDS:
        flags.append(FLAG_NOT_RUNNING)
    if (
        runner.status == RUNNING
        and not runner.ipv4
        and runner.age_seconds > NO_ADDRESS_AFTER_SECONDS
    ):
        flags.append(FLAG_NO_ADDRESS)
    if controller_id and runner.controller_id != controller_id:
        flags.append(FLAG_OTHER_CONTROLLER)
    return Runner(**{**asdict(runner), "flags": tuple(flags)})


def human_age(seconds: int) -> str:
    """1d2h, 3h4m, 5m6s or 7s."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def run_status(
    config: Config,
    out: IO[str],
    *,
    controller_id: str = "",
    pool_id: str = "",
    all_controllers: bool = False,
    as_json: bool = False,
) -> int:
    """Print the provider's runner instances (a table and a summary, or one JSON list)."""
    validate_id("--controller-id", controller_id)
    validate_id("--pool-id", pool_id)
    if all_controllers and not controller_id:
        raise InputError("--all-controllers needs --controller-id (the controller that is yours)")
    client = connect(config)
    runners = list_runners(
        client, config, controller_id="" if all_controllers else controller_id, pool_id=pool_id
    )
    runners = sorted(
        (flagged(runner, controller_id) for runner in runners),
        key=lambda r: (r.controller_id, r.pool_id, r.project, r.name),
    )
    if as_json:
        out.write(json.dumps([_as_json(runner) for runner in runners]) + "\n")
    else:
        _print_table(runners, out)
        _print_summary(runners, out)
    out.flush()
    return EXIT_OK


def _as_json(runner: Runner) -> dict[str, Any]:
    data = asdict(runner)
    data["ipv4"] = list(runner.ipv4)
    data["flags"] = list(runner.flags)
    return data


_COLUMNS = ("NAME", "PROJECT", "CONTROLLER", "POOL", "STATUS", "AGE", "IPV4", "IMAGE", "LOCATION",
            "FLAGS")  # fmt: skip


def _print_table(runners: list[Runner], out: IO[str]) -> None:
    rows = [_COLUMNS] + [
        tuple(
            for_terminal(cell) or "-"
            for cell in (
                r.name,
                r.project,
                r.controller_id,
                r.pool_id,
                r.status,
                human_age(r.age_seconds),
                ",".join(r.ipv4),
                r.image,
                r.location,
                ",".join(r.flags),
            )
        )
        for r in runners
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    for row in rows:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        out.write("\n")


def _print_summary(runners: list[Runner], out: IO[str]) -> None:
    flagged_count = sum(1 for r in runners if r.flags)
    out.write(f"\n{len(runners)} runner instance(s), {flagged_count} flagged\n")
    groups: dict[tuple[str, str], Counter[str]] = {}
    for r in runners:
        groups.setdefault((r.controller_id, r.pool_id), Counter())[r.status] += 1
    for (controller, pool), counts in sorted(groups.items()):
        statuses = ", ".join(f"{status} {count}" for status, count in sorted(counts.items()))
        out.write(
            f"controller {for_terminal(controller)}  pool {for_terminal(pool) or '-'}  {statuses}\n"
        )
    for flag, count in sorted(Counter(f for r in runners for f in r.flags).items()):
        out.write(f"flagged {flag}: {count}\n")
    for member, count in sorted(unreachable_members(runners).items()):
        out.write(f"{unreachable_note(member, count)}\n")


def unreachable_note(member: str, count: int) -> str:
    """One line saying a member cannot be reached and how many instances that hides."""
    return (
        f"cluster member {for_terminal(member)} unreachable: {count} instance(s) on it could not "
        "be read (owner and state unknown)"
    )
