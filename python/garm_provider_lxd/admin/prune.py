"""`garm-provider-lxd prune`: delete one controller's runner instances that are not running."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any

from ..errors import EXIT_ERROR, EXIT_OK, InputError, LxdError
from ..instances import REMOVE_ALL_CONCURRENCY, TAG_CONTROLLER
from ..messages import for_terminal
from .pylxd_client import connect, lxd_errors, project_api, wait_for_operation
from .status import (
    Runner,
    flagged,
    human_age,
    list_runners,
    unreachable_members,
    unreachable_note,
    validate_id,
)

if TYPE_CHECKING:
    import pylxd

    from ..config import Config

# What prune deletes: never a running instance, nor one LXD is starting or stopping.
PRUNABLE_STATUSES = ("Stopped", "Error", "Frozen")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in a duration such as 90s, 30m, 2h or 1d."""
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.isascii() or not number.isdigit() or len(number) > 9:
        raise InputError(f"--older-than: {text!r} is not a duration (e.g. 90s, 30m, 2h, 1d)")
    return int(number) * _UNITS[unit]


def run_prune(
    config: Config, out: IO[str], *, controller_id: str, older_than: str, apply: bool
) -> int:
    """Print (and with apply, carry out) the deletion of the controller's idle old runners."""
    if not controller_id:
        raise InputError("--controller-id is required")
    validate_id("--controller-id", controller_id)
    threshold = parse_duration(older_than)
    client = connect(config)
    runners = [
        flagged(runner, controller_id)
        for runner in list_runners(client, config, controller_id=controller_id, addresses=False)
    ]
    # Instances on an unreachable member are never targets: their tags could not be read.
    unreachable = unreachable_members(runners)
    targets = [
        r
        for r in runners
        if r.controller_id == controller_id
        and r.status in PRUNABLE_STATUSES
        and r.age_seconds >= threshold
    ]
    kept = len(runners) - len(targets)
    verb = "delete" if apply else "would delete"
    for r in targets:
        out.write(
            f"{verb} {for_terminal(r.name)} (project {for_terminal(r.project)}, {r.status}, "
            f"age {human_age(r.age_seconds)})\n"
        )
    for member, count in sorted(unreachable.items()):
        out.write(f"{unreachable_note(member, count)}; not pruned\n")
    out.flush()
    if not apply:
        out.write(
            f"{len(targets)} runner instance(s) of controller {controller_id} would be deleted, "
            f"{kept} kept; nothing changed (add --apply to delete them)\n"
        )
        return EXIT_OK
    errors = _delete_all(client, targets)
    for name, error in errors:
        out.write(f"FAILED {for_terminal(name)}: {for_terminal(error)}\n")
    out.write(
        f"deleted {len(targets) - len(errors)} of {len(targets)} runner instance(s) of "
        f"controller {controller_id}, {kept} kept, {len(errors)} failed\n"
    )
    out.flush()
    return EXIT_ERROR if errors or unreachable else EXIT_OK


def _delete_all(client: pylxd.Client, targets: list[Runner]) -> list[tuple[str, str]]:
    """Delete targets a bounded number at a time; (name, error) of each that failed."""

    def delete(runner: Runner) -> tuple[str, str] | None:
        try:
            _delete(client, runner)
        except LxdError as exc:
            return runner.name, str(exc)
        return None

    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(REMOVE_ALL_CONCURRENCY, len(targets))) as pool:
        return [failure for failure in pool.map(delete, targets) if failure]


def _delete(client: pylxd.Client, runner: Runner) -> None:
    """Delete one runner, unless it changed (started, re-tagged) since the listing."""
    from pylxd.exceptions import NotFound

    api = project_api(client, "" if runner.project == "default" else runner.project)
    node = api.instances[runner.name]
    with lxd_errors(f"delete {runner.name}"):
        try:
            current: dict[str, Any] = node.get().json()["metadata"]
        except NotFound:
            return  # already gone
        if (current.get("config") or {}).get(TAG_CONTROLLER) != runner.controller_id:
            raise LxdError("its controller tag changed since the listing; left alone")
        status = current.get("status")
        if status not in PRUNABLE_STATUSES:
            raise LxdError(f"it is {status} now; left alone")
        if status == "Frozen":
            wait_for_operation(
                client, node.state.put(json={"action": "stop", "force": True, "timeout": 30})
            )
        # No force: LXD refuses to delete an instance that GARM started in the meantime.
        try:
            wait_for_operation(client, node.delete())
        except NotFound:
            return
