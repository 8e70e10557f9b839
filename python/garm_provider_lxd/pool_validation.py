"""ValidatePoolInfo: check a pool's settings against the real server before GARM uses it."""

from __future__ import annotations

from .errors import InputError, NotFoundError, ProviderError
from .images import image_source
from .lxd import quote
from .provider import Provider


def validate_pool(provider: Provider, image: str = "", flavor: str = "") -> None:
    """Raise InputError naming every part of the pool the server cannot satisfy."""
    from .policy import enforce_pool_policy

    # The policy first: a pool is refused when it is created, not at its first runner.
    enforce_pool_policy(provider.operator_config, provider.specs)
    lxd = provider.lxd
    config = provider.config
    specs = provider.specs
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
        missing(f"/1.0/projects/{quote(project, safe='')}", f"project {project}")
    profiles = ["default"] if config.include_default_profile else []
    profiles += list(specs.profiles) if specs.profiles is not None else [flavor] if flavor else []
    for profile in dict.fromkeys(profiles):
        missing(lxd.path(f"/1.0/profiles/{quote(profile, safe='')}"), f"profile {profile}")
    target = specs.target or ""
    if target.startswith("@"):
        missing(f"/1.0/cluster/groups/{quote(target[1:], safe='')}", f"cluster group {target[1:]}")
    elif target:
        missing(f"/1.0/cluster/members/{quote(target, safe='')}", f"cluster member {target}")
    if image:
        try:
            source = image_source(image, config.image_remotes, specs.image_remote)
        except InputError as exc:
            problems.append(str(exc))
        else:
            if "alias" in source and "server" not in source:
                alias = quote(source["alias"], safe="")
                missing(lxd.path(f"/1.0/images/aliases/{alias}"), f"image {image}")
            elif "fingerprint" in source:
                fingerprint = quote(source["fingerprint"], safe="")
                missing(lxd.path(f"/1.0/images/{fingerprint}"), f"image {image}")
    if problems:
        raise InputError("pool is not usable: " + "; ".join(problems))
