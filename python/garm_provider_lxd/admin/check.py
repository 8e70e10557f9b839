"""`garm-provider-lxd check`: verify a config against its server before GARM uses it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import IO, Any

from ..config import Config, ImageRemote, PoolPolicy, instance_projects
from ..errors import ProviderError
from ..messages import MAX_LINE, error_line, for_terminal, redact_url
from ..specs import ExtraSpecs

# The API extensions the provider branches on, and what each one changes.
EXTENSIONS = {
    "instance_create_start": "create and start in one request",
    "instance_force_delete": "delete a running instance in one request",
    "api_filtering": "server-side filtering of ListInstances",
    "instances_state_selective_recursion": "addresses in ListInstances without full state",
    "cloud_init": "user data in cloud-init.user-data (else user.user-data)",
    "instance_boot_mode": "secure boot via boot.mode (else security.secureboot)",
}
# Why: docs/interface-versions.md.
INTERFACE_ADVICE = (
    'use interface_version = "v0.1.0" in GARM: its v0.1.1 client fails every ListInstances, '
    "so GARM never cleans up orphaned runners (docs/interface-versions.md)"
)


class Report:
    """Collects check results and prints them as aligned lines."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.failures = 0

    def ok(self, message: str) -> None:
        """Record a passed check."""
        self._line("ok    ", message)

    def info(self, message: str) -> None:
        """Record a neutral fact."""
        self._line("      ", message)

    def warn(self, message: str) -> None:
        """Record something that works but costs the operator (not a failure)."""
        self._line("WARN  ", message)

    def fail(self, message: str) -> None:
        """Record a failed check."""
        self.failures += 1
        self._line("FAIL  ", message)

    def _line(self, tag: str, message: str) -> None:
        # Messages carry names and errors from the server and the pool's specs.
        self.out.write(f"{tag}{for_terminal(message)}\n")

    def step(self, what: str, action: Callable[[], str]) -> bool:
        """Run one check; its return value is the ok message, an exception a failure."""
        try:
            self.ok(action())
            return True
        except Exception as exc:  # the provider's errors and any client error: a failed check
            self.fail(f"{what}: {error_line(exc, MAX_LINE)}")
        return False


def run_check(
    config: Config, out: IO[str], *, image: str, flavor: str, specs: ExtraSpecs | None = None
) -> int:
    """Check connectivity, auth, server, project, profiles and remotes; print a create request."""
    from ..instances import instance_profiles, pool_config
    from .pylxd_client import connect

    report = Report(out)
    report.info(f"pool policy: {describe_policy(config.pool_policy)}")
    operator_config = config
    # The project decides where profiles are read: a refused one ends the policy check there.
    wanted = specs
    if specs is not None and not report.step("pool policy", lambda: _project(config, specs)):
        wanted = None
    config = pool_config(config, wanted or ExtraSpecs())  # with the pool's project
    endpoint = config.unix_socket_path or redact_url(config.url)
    client: Any = None

    def connected() -> str:
        nonlocal client
        client = connect(config, trusted_only=False)
        env = client.host_info.get("environment") or {}
        return (
            f"connected to {env.get('server', 'lxd')} {env.get('server_version', '?')} at "
            f"{endpoint} (auth: {client.host_info.get('auth', '?')})"
        )

    if not report.step("connect", connected):
        return 1
    pool_specs = ExtraSpecs()  # no specs, or refused ones: check the rest as the config says
    if wanted is not None:
        chosen = wanted

        def allowed() -> str:
            _enforce_pool_policy(client, operator_config, config, chosen, flavor)
            return "the extra specs and the profiles they choose are allowed by the pool policy"

        if report.step("pool policy", allowed):
            pool_specs = wanted
    if client.host_info.get("auth") != "trusted":
        report.fail("the server does not trust this client (add its certificate with trust add)")
    for name, meaning in EXTENSIONS.items():
        report.info(f"{'yes' if client.has_api_extension(name) else 'no '} {name}: {meaning}")

    project = config.project_name or "default"
    report.step("project", lambda: _exists(client, f"project {project}", "projects", project))
    searched = ", ".join(p or "default" for p in instance_projects(config))
    report.info(f"without pool specs, runners are looked up in projects: {searched}")
    report.info(INTERFACE_ADVICE)
    profiles = instance_profiles(config, pool_specs, flavor)
    for profile in profiles:
        report.step(
            "profile",
            lambda p=profile: _exists(client, f"profile {p}", "profiles", p),  # type: ignore[misc]
        )
    _check_root_disk(report, client, profiles, pool_specs.devices)
    for name, remote in sorted(config.image_remotes.items()):
        report.info(f"image remote {name}: {redact_url(remote.addr)} ({remote.protocol})")
    if image:
        report.step("image", lambda: _image(client, config, image, pool_specs.image_remote))
        report.info("baking the runner in skips its download: image build (docs/runner-images.md)")
        out.write("\nCreateInstance would send (user data and URL credentials elided):\n")
        body = _sample_body(client, config, pool_specs, image, flavor)
        out.write(json.dumps(body, indent=2) + "\n")
    out.write(f"\n{'all checks passed' if not report.failures else f'{report.failures} failed'}\n")
    return 0 if not report.failures else 1


def _project(config: Config, specs: ExtraSpecs) -> str:
    from ..policy import enforce_project_policy

    enforce_project_policy(config, specs)
    return f"the extra specs' project is allowed ({specs.project or 'not set'})"


def _enforce_pool_policy(
    client: Any, operator_config: Config, config: Config, specs: ExtraSpecs, flavor: str
) -> None:
    """The create's pool policy (policy.enforce_pool_policy), reading profiles with pylxd."""
    from pylxd.exceptions import LXDAPIException, NotFound

    from ..instances import instance_profiles
    from ..policy import enforce_pool_policy
    from .pylxd_client import api_node, metadata

    def read_profile(name: str) -> dict[str, Any] | None:
        try:
            return metadata(api_node(client, "profiles", name).get()) or {}
        except NotFound:
            return None
        except LXDAPIException as exc:
            raise ProviderError(f"profile {name}: {error_line(exc, 400)}") from None

    profiles = instance_profiles(config, specs, flavor)
    enforce_pool_policy(operator_config, specs, profiles, read_profile)


def describe_policy(policy: PoolPolicy) -> str:
    """One line saying what the operator's [pool_policy] allows beyond the safe defaults."""
    parts = [
        f"{name} = [{', '.join(f'{value!r}' for value in values)}]"
        for name, values in (
            ("allow_config", policy.allow_config),
            ("allow_device_types", policy.allow_device_types),
            ("allow_projects", policy.allow_projects),
            ("allow_volumes", policy.allow_volumes),
            ("allow_profiles", policy.allow_profiles),
            ("allow_image_hosts", policy.allow_image_hosts),
        )
        if values
    ]
    return "; ".join(parts) if parts else "safe defaults only (no [pool_policy] allowances)"


def _check_root_disk(
    report: Report, client: Any, profiles: list[str], devices: Mapping[str, Mapping[str, str]]
) -> None:
    """Warn when the runners' root disks live on a `dir` pool (an image unpack per create)."""
    from pylxd.exceptions import LXDAPIException
    from requests import RequestException

    from .pylxd_client import api_node, metadata

    roots: dict[str, str] = {}
    reading = ""
    try:
        for profile in profiles:
            reading = f"profile {profile}"
            meta = metadata(api_node(client, "profiles", profile).get()) or {}
            roots.update(_root_pools(meta.get("devices") or {}))
        roots.update(_root_pools(devices))
        pool = roots.get("pool")
        if not pool:
            report.info("no root disk in the pool's profiles: LXD's default applies")
            return
        reading = f"storage pool {pool}"
        meta = metadata(api_node(client, "storage-pools", pool).get()) or {}
    except (LXDAPIException, RequestException) as exc:
        problem = f"{reading}: {error_line(exc, 400)}"
        report.info(f"storage: could not read the root disk's pool: {problem}")
        return
    driver = meta.get("driver") or "?"
    if driver == "dir":
        report.warn(
            f"runners' root disks are on storage pool {pool} (driver dir): LXD unpacks the whole "
            "image for every runner; a copy-on-write pool (btrfs, zfs, lvm thin) clones it "
            "(docs/performance.md, capacity planning)"
        )
    else:
        report.ok(f"runners' root disks are on storage pool {pool} (driver {driver})")


def _root_pools(devices: Mapping[str, Any]) -> dict[str, str]:
    for device in devices.values():
        if device.get("type") == "disk" and device.get("path") == "/" and device.get("pool"):
            return {"pool": str(device["pool"])}
    return {}


def _exists(client: Any, what: str, *segments: str) -> str:
    """ "<what> exists", or a ProviderError with LXD's reason (its text for a 404 too)."""
    from pylxd.exceptions import LXDAPIException

    from .pylxd_client import api_node

    try:
        api_node(client, *segments).get()
    except LXDAPIException as exc:
        raise ProviderError(f"{what}: {error_line(exc, 400)}") from None
    return f"{what} exists"


def _image(client: Any, config: Config, image: str, pool_remote: ImageRemote | None) -> str:
    from pylxd.exceptions import LXDAPIException

    from ..images import image_source
    from .pylxd_client import api_node, metadata

    source = image_source(image, config.image_remotes, pool_remote)
    if "server" in source:
        return f"image {image} will be pulled from {redact_url(source['server'])} by the server"
    if "alias" in source:
        node = api_node(client, "images", "aliases", source["alias"])
    else:
        node = api_node(client, "images", source["fingerprint"])
    try:
        meta = metadata(node.get()) or {}
    except LXDAPIException as exc:
        raise ProviderError(f"image {image}: {error_line(exc, 400)}") from None
    return f"image {image} is on the server ({meta.get('target') or meta.get('fingerprint')})"


def _sample_body(
    client: Any, config: Config, specs: ExtraSpecs, image: str, flavor: str
) -> dict[str, Any]:
    from ..bootstrap import parse_bootstrap
    from ..instances import create_request

    sample = {
        "name": "garm-sample",
        "arch": "amd64",
        "os_type": "linux",
        "pool_id": "<pool id>",
        "flavor": flavor,
        "image": image,
    }
    body = create_request(
        config,
        specs,
        "<controller id>",
        parse_bootstrap(sample),
        b"<user data>",
        client.has_api_extension,
    )
    source = body.get("source")
    if isinstance(source, dict) and isinstance(source.get("server"), str):
        source["server"] = redact_url(source["server"])  # printed: no credentials
    return body
