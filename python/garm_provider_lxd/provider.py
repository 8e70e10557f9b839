"""One method per GARM command that touches LXD."""

from __future__ import annotations

import os
import time

from ._native import json_dumps, json_loads
from .config import instance_projects
from .errors import DuplicateError, InputError, LxdError, NotFoundError, ProviderError
from .instances import (
    REMOVE_ALL_CONCURRENCY,
    TAG_CONTROLLER,
    TAG_CREATE_ID,
    TAG_POOL,
    choose_runner,
    create_request,
    instance_profiles,
    pool_config,
    validate_instance_name,
)
from .lxd import Lxd, api_path
from .specs import ExtraSpecs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .bootstrap import Bootstrap
    from .config import Config

    BeforeDelete = Callable[[Lxd, str, dict[str, Any]], None]

# The address wait polls LXD: quickly at first (an address usually comes within 2 s of the
# start), then less often, and never more often than twice the time the last poll took. Under a
# burst of creates LXD is the bottleneck, and a running instance's state is one of its dearest
# answers (~20 ms of its CPU here): 40 creates polling every 0.1 s would ask for more CPU than
# two cores have and starve the very starts they wait for (docs/performance.md, capacity).
ADDRESS_POLL_FIRST = 0.1
ADDRESS_POLL_GROWTH = 1.25
ADDRESS_POLL_MAX = 0.5
ADDRESS_POLL_LOAD_FACTOR = 2.0
BUSY_RETRIES = 3
BUSY_BACKOFF_SECONDS = 0.5


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
        self._profiles: dict[str, dict[str, Any] | None] = {}

    # -- create -----------------------------------------------------------------------------

    def enforce_pool_policy(self, flavor: str) -> None:
        """Raise InputError when the pool's specs, or a profile it chose, breaks the pool policy."""
        from .policy import enforce_pool_policy

        profiles = instance_profiles(self.config, self.specs, flavor)
        enforce_pool_policy(self.operator_config, self.specs, profiles, self.profile)

    def profile(self, name: str) -> dict[str, Any] | None:
        """A profile of the pool's project as LXD has it (None if absent), shared for a minute."""
        from .profile_cache import cached_profile

        if name not in self._profiles:
            server = self.config.unix_socket_path or self.config.url
            self._profiles[name] = cached_profile(
                server, self.lxd.project, name, lambda: self.lxd.get_profile(name)
            )
        return self._profiles[name]

    def create_instance(self, bootstrap: Bootstrap, user_data: bytes) -> bytes:
        """Create and start a runner instance; return its ProviderInstance JSON."""
        self.enforce_pool_policy(bootstrap.flavor)
        name = bootstrap.name
        validate_instance_name(name)
        body = self.create_body(bootstrap, user_data)
        create_id = body["config"][TAG_CREATE_ID] = os.urandom(16).hex()
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
        except BaseException as exc:
            # Whatever failed (including a signal turned into an exception by the CLI), nothing
            # this call created may stay behind, and nothing it did not create may go.
            if self._discard(name, create_id) and isinstance(exc, LxdError):
                # Another create of this name won the race (LXD 5.0 fails the loser's
                # operation: "Instance is busy running a "create" operation", or "This
                # "instances" entry already exists"); its instance stays.
                raise DuplicateError(f"instance {name} already exists ({exc})") from None
            if isinstance(exc, NotFoundError):
                # Someone removed it mid-create (RemoveAllInstances, an operator): exit code 30
                # would tell GARM "no such instance", so report it as the failed create it is.
                raise LxdError(f"instance {name} was removed while it was being created") from None
            raise

    def create_body(self, bootstrap: Bootstrap, user_data: bytes) -> dict[str, Any]:
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

    def _discard(self, name: str, create_id: str) -> bool:
        """Best-effort removal of the instance this create made; True if another holds the name.

        Only an instance tagged with this call's create id is deleted. When none is there yet,
        the operations on the name are waited for first: a create still running (one this
        call gave up on) would otherwise leave its instance behind.
        """
        try:
            try:
                meta, _ = self.lxd.get_instance(name)
            except NotFoundError:
                if not self.lxd.wait_for_instance_operations(name):
                    return False
                meta, _ = self.lxd.get_instance(name)
            if (meta.get("config") or {}).get(TAG_CREATE_ID) != create_id:
                return True
            self._force_delete(name)
        except BaseException:  # the original error is the one to report
            return False
        return False

    # -- single-instance commands -----------------------------------------------------------

    def _projects(self) -> tuple[str, ...]:
        """Where this pool's instances can be: the project its specs name, else every allowed one.

        GARM passes no specs to these commands under v0.1.0, so a runner created in a pool's own
        project must be found without them.
        """
        if self.specs.project is not None:
            return (self.config.project_name,)
        return instance_projects(self.config)

    def _owned(self, instance_id: str, *, full: bool = False) -> tuple[Lxd, dict[str, Any], bytes]:
        """Return (connection to its project, metadata, raw JSON) of this controller's instance.

        Looks in every project of _projects() (one GET each); instances.choose_runner decides.
        """
        projects = self._projects()
        found: list[tuple[tuple[Lxd, dict[str, Any], bytes], dict[str, Any]]] = []
        for project in projects:
            lxd = self.lxd.for_project(project)
            try:
                meta, raw = lxd.get_instance(instance_id, full=full)
            except NotFoundError:
                continue
            found.append(((lxd, meta, raw), meta))
        return choose_runner(instance_id, projects, found, controller_id=self.controller_id)

    def get_instance(self, instance_id: str) -> bytes:
        """Return the ProviderInstance JSON of one instance."""
        from ._native import provider_instance

        lxd, meta, raw = self._owned(instance_id, full=True)
        running_without_state = meta.get("status") == "Running" and not meta.get("state")
        state = lxd.get_state(instance_id) if running_without_state else None
        return provider_instance(raw, state)

    def delete_instance(self, instance_id: str, before: BeforeDelete | None = None) -> None:
        """Stop (forced) and delete an instance; a missing one is already deleted.

        before(lxd, name, instance) runs first when the instance exists (post-mortems).
        """
        try:
            lxd, meta, _ = self._owned(instance_id)
        except NotFoundError:
            # GARM deletes right after killing a create that timed out, and LXD may still be
            # running that create with the instance not yet in its database: wait for it and
            # look again, or the instance appears afterwards and nobody ever deletes it.
            # In every project it may be created in (each one waited for, no short cut).
            waited = [
                self.lxd.for_project(project).wait_for_instance_operations(instance_id)
                for project in self._projects()
            ]
            if not any(waited):
                _refuse_while_members_unreachable(self.lxd, instance_id)
                return
            try:
                lxd, meta, _ = self._owned(instance_id)
            except NotFoundError:
                _refuse_while_members_unreachable(self.lxd, instance_id)
                return
        if before is not None:
            before(lxd, instance_id, meta)
        try:
            self._force_delete(instance_id, lxd)
        except NotFoundError:
            return

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
        lxd, _, _ = self._owned(instance_id)
        try:
            lxd.change_state(instance_id, "start")
        except LxdError as exc:
            if not _already(exc, "start"):
                raise

    def stop_instance(self, instance_id: str) -> None:
        """Force-stop an instance; stopping a stopped one succeeds."""
        lxd, _, _ = self._owned(instance_id)
        try:
            lxd.change_state(instance_id, "stop", force=True)
        except LxdError as exc:
            if not _already(exc, "stop"):
                raise

    # -- pools ------------------------------------------------------------------------------

    def validate_pool(self, image: str = "", flavor: str = "") -> None:
        """Raise InputError naming every part of the pool the server cannot satisfy."""
        from .images import image_source

        # The policy first: a pool is refused when it is created, not at its first runner.
        self.enforce_pool_policy(flavor)
        lxd = self.lxd
        config = self.config
        specs = self.specs
        problems: list[str] = []

        def missing(path: str, what: str) -> None:
            try:
                lxd.call("GET", path)
            except NotFoundError:
                problems.append(f"{what} does not exist")
            except ProviderError as exc:
                problems.append(f"{what}: {exc}")

        project = config.project_name
        if project and project != "default":
            missing(api_path("projects", project), f"project {project}")
        for profile in instance_profiles(config, specs, flavor):
            try:
                if self.profile(profile) is None:  # already read by the policy if it judged it
                    problems.append(f"profile {profile} does not exist")
            except ProviderError as exc:
                problems.append(f"profile {profile}: {exc}")
        target = specs.target or ""
        if target.startswith("@"):
            missing(api_path("cluster", "groups", target[1:]), f"cluster group {target[1:]}")
        elif target:
            missing(api_path("cluster", "members", target), f"cluster member {target}")
        if image:
            try:
                source = image_source(image, config.image_remotes, specs.image_remote)
            except InputError as exc:
                problems.append(str(exc))
            else:
                if "alias" in source and "server" not in source:
                    alias = source["alias"]
                    missing(lxd.path(api_path("images", "aliases", alias)), f"image {image}")
                elif "fingerprint" in source:
                    missing(lxd.path(api_path("images", source["fingerprint"])), f"image {image}")
        if problems:
            raise InputError("pool is not usable: " + "; ".join(problems))

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


def _has_ipv4(result: bytes) -> bool:
    # Not state_ipv4: the poll holds envelopes, not the state object it reads, and taking that out
    # costs a parse per poll; the two differ only on an address whose family contradicts its ':'.
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
