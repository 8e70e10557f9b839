"""ValidatePoolInfo: check a pool's settings against the real server before GARM uses it."""

from __future__ import annotations

from .errors import InputError, NotFoundError, ProviderError
from .images import image_source
from .lxd import api_path
from .provider import Provider, instance_profiles


def validate_pool(provider: Provider, image: str = "", flavor: str = "") -> None:
    """Raise InputError naming every part of the pool the server cannot satisfy."""
    # The policy first: a pool is refused when it is created, not at its first runner.
    provider.enforce_pool_policy(flavor)
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
        missing(api_path("projects", project), f"project {project}")
    for profile in instance_profiles(config, specs, flavor):
        try:
            if provider.profile(profile) is None:  # already read by the policy if it judged it
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
                missing(lxd.path(api_path("images", "aliases", source["alias"])), f"image {image}")
            elif "fingerprint" in source:
                missing(lxd.path(api_path("images", source["fingerprint"])), f"image {image}")
    if problems:
        raise InputError("pool is not usable: " + "; ".join(problems))
