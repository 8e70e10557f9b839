"""What a runner instance is on LXD: its tags, its name, its profiles and its create request.

Both programs need this: the GARM commands (provider.py) create and find runners by it, and the
operator commands (admin/) list, read and prune them by the same tags.
"""

from __future__ import annotations

from .bootstrap import ARCHITECTURES
from .errors import InputError, NotFoundError, ProviderError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, TypeVar

    Found = TypeVar("Found")

    from .bootstrap import Bootstrap
    from .config import Config
    from .specs import ExtraSpecs

TAG_CONTROLLER = "user.runner-controller-id"
TAG_POOL = "user.runner-pool-id"
TAG_OS_TYPE = "user.os-type"
TAG_OS_ARCH = "user.os-arch"
# A value of its own for every CreateInstance call: what a failed create cleans up must be the
# instance this call made, not one another call (another controller, or GARM's retry) made
# under the same name in the meantime (docs/reliability.md, "Two creates for one name").
TAG_CREATE_ID = "user.runner-create-id"
REMOVE_ALL_CONCURRENCY = 8
# Where LXD reads an instance's user data: cloud-init's own key on servers with the cloud_init
# extension, the older user.* key before it.
USER_DATA_KEY = "cloud-init.user-data"
USER_DATA_KEY_BEFORE_CLOUD_INIT = "user.user-data"


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


def is_garm_id(value: str) -> bool:
    """Whether value looks like a GARM id: non-empty ASCII letters, digits, '-', '_' and '.'."""
    # ASCII only: a UUID never needs more, and LXD's filter grammar is not documented for
    # other letters (docs/operating-runners.md, "Which ids are accepted").
    return bool(value) and all(c.isascii() and (c.isalnum() or c in "-_.") for c in value)


def instance_filter(tags: Mapping[str, str]) -> str:
    """LXD's filter for the instances carrying every tag given ("" if a value is no GARM id)."""
    if not all(is_garm_id(value) for value in tags.values()):
        return ""
    return " and ".join(f"config.{key} eq {value}" for key, value in tags.items())


def listing_filter(tags: Mapping[str, str]) -> str:
    """LXD's filter for a runner listing by the tags given, unreachable instances included ("" if
    there is no tag filter)."""
    clause = instance_filter(tags)
    # LXD lists an instance on a cluster member it cannot reach with status Error and no config,
    # which the tag clause alone would drop (LXD evaluates the filter left to right).
    return f"{clause} or status eq Error" if clause else ""


class NotARunner(NotFoundError):
    """An instance of that name exists, but is not a runner of the caller's controller."""


def choose_runner(
    name: str,
    projects: Sequence[str],
    found: Sequence[tuple[Found, Mapping[str, Any]]],
    *,
    controller_id: str | None,
) -> Found:
    """The one runner among what a lookup of name in every project found (handle, metadata).

    A runner carries TAG_CONTROLLER: with controller_id, that controller's (the GARM commands
    never touch another controller's instance); with None, any controller's (the operator's
    `logs`). Nothing found is NotFoundError, only other instances NotARunner, and a runner in
    several projects is an error, never a guess (docs/operating-runners.md, "Projects").
    """
    runners = [
        handle
        for handle, meta in found
        if (tag := (meta.get("config") or {}).get(TAG_CONTROLLER))
        and (controller_id is None or tag == controller_id)
    ]
    where = ", ".join(project or "default" for project in projects)
    if len(runners) > 1:
        raise ProviderError(
            f"instance {name} is a runner in several projects ({where}); "
            "refusing to guess which one is meant"
        )
    if runners:
        return runners[0]
    if found:
        whose = "this GARM controller" if controller_id is not None else "garm-provider-lxd"
        raise NotARunner(f"instance {name} is not a runner of {whose}")
    raise NotFoundError(f"instance {name} not found in project(s) {where}")


def user_data_key(has_extension: Callable[[str], bool]) -> str:
    """The instance config key LXD reads user data from on a server with these extensions."""
    return USER_DATA_KEY if has_extension("cloud_init") else USER_DATA_KEY_BEFORE_CLOUD_INIT


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
    bootstrap: Bootstrap,
    user_data: bytes,
    has_extension: Callable[[str], bool],
) -> dict[str, Any]:
    """Return the POST /1.0/instances body for a bootstrap, on a server with these extensions."""
    from .images import image_source

    profiles = instance_profiles(config, specs, bootstrap.flavor)
    instance_config: dict[str, str] = {
        **specs.config,
        TAG_CONTROLLER: controller_id,
        TAG_POOL: bootstrap.pool_id,
        TAG_OS_TYPE: bootstrap.os_type,
        TAG_OS_ARCH: bootstrap.arch,
        user_data_key(has_extension): user_data.decode("utf-8"),
    }
    if config.instance_type == "virtual-machine":
        if has_extension("instance_boot_mode"):
            mode = "uefi-secureboot" if config.secure_boot else "uefi-nosecureboot"
            instance_config["boot.mode"] = mode
        else:
            instance_config["security.secureboot"] = "true" if config.secure_boot else "false"
    body: dict[str, Any] = {
        "name": bootstrap.name,
        "type": config.instance_type,
        "architecture": ARCHITECTURES[bootstrap.arch][0],
        "profiles": profiles,
        "config": instance_config,
        "devices": {key: dict(value) for key, value in specs.devices.items()},
        "source": image_source(bootstrap.image, config.image_remotes, specs.image_remote),
        "start": has_extension("instance_create_start"),
    }
    if specs.ephemeral is not None:
        body["ephemeral"] = specs.ephemeral
    return body


def _pick(override: Any, default: Any) -> Any:
    return default if override is None else override
