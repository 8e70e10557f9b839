"""One method per GARM command that touches LXD."""

from __future__ import annotations

import time

from ._native import json_dumps, json_loads
from .bootstrap import ARCHITECTURES, read_arch, read_os_type, string_field
from .config import instance_projects
from .errors import DuplicateError, InputError, LxdError, NotFoundError, ProviderError
from .lxd import Lxd
from .specs import ExtraSpecs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from .config import Config

TAG_CONTROLLER = "user.runner-controller-id"
TAG_POOL = "user.runner-pool-id"
TAG_OS_TYPE = "user.os-type"
TAG_OS_ARCH = "user.os-arch"
# The address wait polls LXD: quickly at first (an address usually comes within 2 s of the
# start), then less often, and never more often than twice the time the last poll took. Under a
# burst of creates LXD is the bottleneck, and a running instance's state is one of its dearest
# answers (~20 ms of its CPU here): 40 creates polling every 0.1 s would ask for more CPU than
# two cores have and starve the very starts they wait for (docs/performance.md, capacity).
ADDRESS_POLL_FIRST = 0.1
ADDRESS_POLL_GROWTH = 1.25
ADDRESS_POLL_MAX = 0.5
ADDRESS_POLL_LOAD_FACTOR = 2.0
REMOVE_ALL_CONCURRENCY = 8
BUSY_RETRIES = 3
BUSY_BACKOFF_SECONDS = 0.5


def validate_instance_name(name: str) -> None:
    """Reject names LXD would refuse, before anything is created."""
    problem = ""
    if not name:
        problem = "it is empty"
    elif len(name) > 63:
        problem = "it is longer than 63 characters"
    elif not all(c.isascii() and (c.isalnum() or c == "-") for c in name):
        problem = "only ASCII letters, digits and '-' are allowed"
    elif name[0].isdigit() or name[0] == "-" or name[-1] == "-":
        problem = "it must not start with a digit or '-', nor end with '-'"
    if problem:
        raise InputError(f"instance name {name!r} is not valid for LXD: {problem}")


class Provider:
    """The LXD provider for one GARM controller."""

    def __init__(self, config: Config, controller_id: str, specs: ExtraSpecs | None = None) -> None:
        from .policy import enforce_project_policy

        self.specs = specs or ExtraSpecs()
        # Every command builds its provider here: none reaches a project the policy does not
        # allow. The rest of the policy guards what a create makes (enforce_pool_policy): a
        # delete must still work for a pool whose specs were made dangerous after its runners
        # were created, or those runners would be lost.
        enforce_project_policy(config, self.specs)
        self.operator_config = config  # as the operator wrote it, before the pool's overrides
        self.config = pool_config(config, self.specs)
        self.controller_id = controller_id
        self.lxd = Lxd(self.config)

    # -- create -----------------------------------------------------------------------------

    def create_instance(self, bootstrap: Mapping[str, Any], user_data: bytes) -> bytes:
        """Create and start a runner instance; return its ProviderInstance JSON."""
        from .policy import enforce_pool_policy

        enforce_pool_policy(self.operator_config, self.specs)
        name = string_field(bootstrap, "name", required=True)
        validate_instance_name(name)
        body = self.create_body(bootstrap, user_data)
        try:
            self.lxd.get_instance(name)
        except NotFoundError:
            pass
        else:
            raise DuplicateError(f"instance {name} already exists")
        try:
            self.lxd.create_instance(body, target=self.specs.target or "")
            if not body.get("start"):
                self.lxd.change_state(name, "start")
            return self._wait_for_address(name)
        except DuplicateError:
            raise
        except NotFoundError:
            # Someone removed it mid-create (RemoveAllInstances, an operator): exit code 30
            # would tell GARM "no such instance", so report it as the failed create it is.
            self._discard(name)
            raise LxdError(f"instance {name} was removed while it was being created") from None
        except BaseException:
            # Whatever failed (including a signal turned into an exception by the CLI),
            # nothing half-created may stay behind.
            self._discard(name)
            raise

    def create_body(self, bootstrap: Mapping[str, Any], user_data: bytes) -> dict[str, Any]:
        """Return the POST /1.0/instances request for a bootstrap (user data already built)."""
        has_extension = self.lxd.has_extension
        return create_request(
            self.config, self.specs, self.controller_id, bootstrap, user_data, has_extension
        )

    def _wait_for_address(self, name: str) -> bytes:
        from ._native import provider_instance

        # With instance_get_full one request a poll carries the state; else two.
        full = self.lxd.has_extension("instance_get_full")
        instance = b""
        state: bytes | None = None
        deadline = time.monotonic() + self.config.address_wait_seconds
        interval = ADDRESS_POLL_FIRST
        while True:
            began = time.monotonic()
            if full or not instance:
                _, instance = self.lxd.get_instance(name, full=full)
            if not full:
                state = self.lxd.get_state(name)
            result = provider_instance(instance, state)
            now = time.monotonic()
            if now >= deadline or _has_ipv4(result):
                return result
            pause = max(interval, ADDRESS_POLL_LOAD_FACTOR * (now - began))
            time.sleep(min(pause, ADDRESS_POLL_MAX, max(deadline - now, 0.0)))
            interval = min(interval * ADDRESS_POLL_GROWTH, ADDRESS_POLL_MAX)

    def _discard(self, name: str) -> None:
        """Best-effort removal of a half-created instance."""
        try:
            self._force_delete(name)
        except BaseException:  # the original error is the one to report
            return

    # -- single-instance commands -----------------------------------------------------------

    def _projects(self) -> tuple[str, ...]:
        """Where this pool's instances can be: the project its specs name, else every allowed one.

        GARM passes no specs to these commands under v0.1.0, so a runner created in a pool's own
        project must be found without them.
        """
        if self.specs.project is not None:
            return (self.config.project_name,)
        return instance_projects(self.config)

    def _owned(self, instance_id: str, *, full: bool = False) -> tuple[dict[str, Any], bytes]:
        """Return the instance if it exists and belongs to this controller.

        Looks in every project of _projects() (one GET each) and points self.lxd at the one
        that holds it; two projects holding this controller's instance of that name is an error.
        """
        projects = self._projects()
        found: list[tuple[Lxd, dict[str, Any], bytes]] = []
        foreign = False
        for project in projects:
            lxd = self.lxd.for_project(project)
            try:
                meta, raw = lxd.get_instance(instance_id, full=full)
            except NotFoundError:
                if len(projects) == 1:
                    raise
                continue
            if (meta.get("config") or {}).get(TAG_CONTROLLER) == self.controller_id:
                found.append((lxd, meta, raw))
            else:
                foreign = True
        if len(found) > 1:
            where = ", ".join(lxd.project or "default" for lxd, _, _ in found)
            raise ProviderError(
                f"instance {instance_id} of this GARM controller exists in several projects "
                f"({where}); refusing to guess which one is meant"
            )
        if not found:
            if foreign:
                raise NotFoundError(
                    f"instance {instance_id} is not managed by this GARM controller"
                )
            where = ", ".join(project or "default" for project in projects)
            raise NotFoundError(f"instance {instance_id} not found in projects {where}")
        self.lxd, meta, raw = found[0]
        return meta, raw

    def get_instance(self, instance_id: str) -> bytes:
        """Return the ProviderInstance JSON of one instance."""
        from ._native import provider_instance

        meta, raw = self._owned(instance_id, full=True)
        running_without_state = meta.get("status") == "Running" and not meta.get("state")
        state = self.lxd.get_state(instance_id) if running_without_state else None
        return provider_instance(raw, state)

    def delete_instance(self, instance_id: str) -> None:
        """Stop (forced) and delete an instance; a missing one is already deleted."""
        try:
            self._owned(instance_id)
        except NotFoundError:
            # GARM deletes right after killing a create that timed out, and LXD may still be
            # running that create with the instance not yet in its database: wait for it and
            # look again, or the instance appears afterwards and nobody ever deletes it.
            # In every project it may be created in (each one waited for, no short cut).
            waited = [
                self.lxd.for_project(project).wait_for_instance_operations(instance_id)
                for project in self._projects()
            ]
            if not any(waited) or not self._still_owned(instance_id):
                _refuse_while_members_unreachable(self.lxd, instance_id)
                return
        try:
            self._force_delete(instance_id)
        except NotFoundError:
            return

    def _still_owned(self, instance_id: str) -> bool:
        try:
            self._owned(instance_id)
        except NotFoundError:
            return False
        return True

    def _force_delete(self, name: str, lxd: Lxd | None = None) -> None:
        # GARM deletes right after killing a create, while LXD may still be creating (or
        # starting) the instance: LXD refuses with "busy running an operation" until it is done,
        # and a start that lands between our stop and our DELETE leaves it running.
        lxd = lxd or self.lxd
        for attempt in range(BUSY_RETRIES + 1):
            try:
                _force_delete_once(lxd, name)
                return
            except LxdError as exc:
                if not _raced(exc) or attempt == BUSY_RETRIES:
                    raise
                lxd.wait_for_instance_operations(name)
                # A stop LXD runs inside a failed start is not listed as an operation to wait
                # for, yet keeps the instance "busy": give it a moment more on every retry.
                time.sleep(BUSY_BACKOFF_SECONDS * (attempt + 1))

    def start_instance(self, instance_id: str) -> None:
        """Start an instance; starting a running one succeeds."""
        self._owned(instance_id)
        try:
            self.lxd.change_state(instance_id, "start")
        except LxdError as exc:
            if not _already(exc, "start"):
                raise

    def stop_instance(self, instance_id: str) -> None:
        """Force-stop an instance; stopping a stopped one succeeds."""
        self._owned(instance_id)
        try:
            self.lxd.change_state(instance_id, "stop", force=True)
        except LxdError as exc:
            if not _already(exc, "stop"):
                raise

    # -- many instances ---------------------------------------------------------------------

    def list_instances(self, pool_id: str) -> bytes:
        """Return the ProviderInstance JSON array of this controller's (pool's) instances."""
        listings = []
        for _, listing, unreadable in self._listings(pool_id):
            listings.append(listing)
            if unreadable:
                listings.append(
                    json_dumps([_unknown_instance(item["name"]) for item in unreadable])
                )
        if len(listings) == 1:
            return listings[0]
        # Each listing is a compact JSON array: join their items into one array.
        items = [listing[1:-1] for listing in listings if listing != b"[]"]
        return b"[" + b",".join(items) + b"]"

    def _listings(self, pool_id: str) -> list[tuple[Lxd, bytes, list[dict[str, str]]]]:
        """(connection, ProviderInstance JSON array, unreadable instances) per project.

        The unreadable ones live on a cluster member LXD cannot reach: their tags, so their
        owner, cannot be read (see unreadable_instances).
        """
        from ._native import provider_instances

        filters = {TAG_CONTROLLER: self.controller_id}
        if pool_id:
            filters[TAG_POOL] = pool_id
        recursion = (
            "2;fields=state.network"
            if self.lxd.has_extension("instances_state_selective_recursion")
            else "1"
        )
        listings: list[tuple[Lxd, bytes, list[dict[str, str]]]] = []
        for index, project in enumerate(self._projects()):
            lxd = self.lxd.for_project(project)
            try:
                body = lxd.list_instances(filters, recursion)
            except NotFoundError:
                if index == 0:
                    raise
                continue  # an allowed project that does not exist (yet) holds no runners
            mine = provider_instances(body, self.controller_id, pool_id or None)
            listings.append((lxd, mine, unreadable_instances(body)))
        return listings

    def remove_all_instances(self) -> None:
        """Delete every instance of this controller, a bounded number at a time."""
        from concurrent.futures import ThreadPoolExecutor

        listings = self._listings("")
        targets = [
            (lxd, item["name"]) for lxd, listing, _ in listings for item in json_loads(listing)
        ]
        unreadable = [item for _, _, items in listings for item in items]
        errors: list[ProviderError] = []
        if unreadable:
            errors.append(_unreachable_error(unreadable))
        if not targets and not errors:
            return

        def remove(target: tuple[Lxd, str]) -> None:
            lxd, name = target
            try:
                self._force_delete(name, lxd)
            except NotFoundError:
                return
            except ProviderError as exc:
                errors.append(exc)

        if targets:
            with ThreadPoolExecutor(max_workers=min(REMOVE_ALL_CONCURRENCY, len(targets))) as pool:
                list(pool.map(remove, targets))
        if errors:
            failed = len(errors) - (1 if unreadable else 0)
            raise LxdError(
                f"removed {len(targets) - failed} of {len(targets)} instances; first error: "
                f"{errors[0]}"
            )


def pool_config(config: Config, specs: ExtraSpecs) -> Config:
    """The config a pool's instances live by: its extra specs override the provider config."""
    return config._replace(
        project_name=_pick(specs.project, config.project_name),
        instance_type=_pick(specs.instance_type, config.instance_type),
        secure_boot=_pick(specs.secure_boot, config.secure_boot),
    )


def instance_profiles(config: Config, specs: ExtraSpecs, flavor: str) -> list[str]:
    """A pool's instance profiles in order: default (if configured), then its specs' or flavor."""
    profiles = ["default"] if config.include_default_profile else []
    wanted = specs.profiles if specs.profiles is not None else (flavor,)
    profiles += [name for name in wanted if name and name not in profiles]
    return profiles


def create_request(
    config: Config,
    specs: ExtraSpecs,
    controller_id: str,
    bootstrap: Mapping[str, Any],
    user_data: bytes,
    has_extension: Callable[[str], bool],
) -> dict[str, Any]:
    """Return the POST /1.0/instances body for a bootstrap, on a server with these extensions."""
    from .images import image_source

    name = string_field(bootstrap, "name", required=True)
    arch = read_arch(bootstrap)
    os_type = read_os_type(bootstrap)
    pool_id = string_field(bootstrap, "pool_id")
    flavor = string_field(bootstrap, "flavor")
    profiles = instance_profiles(config, specs, flavor)
    user_data_key = "cloud-init.user-data" if has_extension("cloud_init") else "user.user-data"
    instance_config: dict[str, str] = {
        **specs.config,
        TAG_CONTROLLER: controller_id,
        TAG_POOL: pool_id,
        TAG_OS_TYPE: os_type,
        TAG_OS_ARCH: arch,
        user_data_key: user_data.decode("utf-8"),
    }
    if config.instance_type == "virtual-machine":
        if has_extension("instance_boot_mode"):
            mode = "uefi-secureboot" if config.secure_boot else "uefi-nosecureboot"
            instance_config["boot.mode"] = mode
        else:
            instance_config["security.secureboot"] = "true" if config.secure_boot else "false"
    body: dict[str, Any] = {
        "name": name,
        "type": config.instance_type,
        "architecture": ARCHITECTURES[arch][0],
        "profiles": profiles,
        "config": instance_config,
        "devices": {key: dict(value) for key, value in specs.devices.items()},
        "source": image_source(
            string_field(bootstrap, "image", required=True),
            config.image_remotes,
            specs.image_remote,
        ),
        "start": has_extension("instance_create_start"),
    }
    if specs.ephemeral is not None:
        body["ephemeral"] = specs.ephemeral
    return body


def unreadable_instances(body: bytes) -> list[dict[str, str]]:
    """Instances an LXD listing shows without config: they live on a member it cannot reach.

    LXD (5.0 to 6.x) lists those with status Error and only their name, project and location.
    """
    if b'"Error"' not in body:  # the common case costs a byte search, no parse
        return []
    items = json_loads(body).get("metadata") or []
    return [
        {"name": str(item.get("name")), "location": str(item.get("location") or "?")}
        for item in items
        if isinstance(item, dict) and item.get("status") == "Error" and not item.get("config")
    ]


def _unknown_instance(name: str) -> dict[str, Any]:
    """The ProviderInstance of an instance whose state cannot be read: status "unknown"."""
    return {
        "provider_id": name,
        "name": name,
        "os_type": "unknown",
        "os_name": "",
        "os_version": "",
        "os_arch": "",
        "addresses": [],
        "status": "unknown",
    }


def _members(unreadable: list[dict[str, str]]) -> str:
    return ", ".join(sorted({item["location"] for item in unreadable}))


def _unreachable_error(unreadable: list[dict[str, str]]) -> LxdError:
    return LxdError(
        f"cluster member(s) {_members(unreadable)} unreachable: cannot tell whether their "
        f"{len(unreadable)} instance(s) belong to this controller; run again when they are back"
    )


def _refuse_while_members_unreachable(lxd: Lxd, name: str) -> None:
    """Refuse to call a missing instance deleted while a member is offline.

    A create sent to a member that then hung or dropped off the network is carried out when the
    member comes back: an instance not found now may still appear.
    """
    offline = lxd.unreachable_members()
    if offline:
        raise LxdError(
            f"instance {name} not found, but cluster member(s) {', '.join(offline)} are "
            "offline and a create sent there may still land; try again when they are back"
        )


def _force_delete_once(lxd: Lxd, name: str) -> None:
    if lxd.has_extension("instance_force_delete"):
        lxd.delete_instance(name, force=True)
        return
    try:
        lxd.change_state(name, "stop", force=True)
    except LxdError as exc:
        if not _already(exc, "stop"):
            raise
    lxd.delete_instance(name, force=False)


def _pick(override: Any, default: Any) -> Any:
    return default if override is None else override


def _has_ipv4(result: bytes) -> bool:
    addresses = json_loads(result).get("addresses") or []
    return any(":" not in str(item.get("address", "")) for item in addresses)


def _raced(exc: Exception) -> bool:
    """Whether a delete failed only because another operation on the instance got there first."""
    text = str(exc).lower()
    return "busy" in text or "instance is running" in text


def _already(exc: Exception, action: str) -> bool:
    text = str(exc).lower()
    if action == "start":
        return "already running" in text
    return "already stopped" in text or "not running" in text
