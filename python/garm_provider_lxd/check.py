"""`garm-provider-lxd check`: verify a config against its server before GARM uses it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import IO, Any

from .config import Config, ImageRemote, PoolPolicy, instance_projects
from .errors import ProviderError
from .messages import redact_url
from .specs import ExtraSpecs

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
        self.out.write(f"ok    {message}\n")

    def info(self, message: str) -> None:
        """Record a neutral fact."""
        self.out.write(f"      {message}\n")

    def warn(self, message: str) -> None:
        """Record something that works but costs the operator (not a failure)."""
        self.out.write(f"WARN  {message}\n")

    def fail(self, message: str) -> None:
        """Record a failed check."""
        self.failures += 1
        self.out.write(f"FAIL  {message}\n")

    def step(self, what: str, action: Callable[[], str]) -> bool:
        """Run one check; its return value is the ok message, an exception a failure."""
        try:
            self.ok(action())
            return True
        except ProviderError as exc:
            self.fail(f"{what}: {redact_url(str(exc))}")
        except Exception as exc:  # any client error is a failed check
            self.fail(f"{what}: {redact_url(' '.join(str(exc).split())) or type(exc).__name__}")
        return False


def run_check(
    config: Config, out: IO[str], *, image: str, flavor: str, specs: ExtraSpecs | None = None
) -> int:
    """Check connectivity, auth, server, project, profiles and remotes; print a create request."""
    from .policy import enforce_pool_policy
    from .provider import Provider

    report = Report(out)
    report.info(f"pool policy: {describe_policy(config.pool_policy)}")
    provider = None
    if specs is not None:

        def allowed() -> str:
            nonlocal provider
            enforce_pool_policy(config, specs)
            provider = Provider(config, "<controller id>", specs)
            return "the extra specs are allowed by the pool policy"

        report.step("pool policy", allowed)
    if provider is None:  # no specs, or refused ones: check the rest as the config says
        provider = Provider(config, "<controller id>")
    config = provider.config  # with the pool's project
    lxd = provider.lxd
    endpoint = config.unix_socket_path or redact_url(config.url)

    def connect() -> str:
        server = lxd.server()
        env = server.get("environment") or {}
        return (
            f"connected to {env.get('server', 'lxd')} {env.get('server_version', '?')} at "
            f"{endpoint} (auth: {server.get('auth', '?')})"
        )

    if not report.step("connect", connect):
        return 1
    if lxd.server().get("auth") != "trusted":
        report.fail("the server does not trust this client (add its certificate with trust add)")
    for name, meaning in EXTENSIONS.items():
        report.info(f"{'yes' if lxd.has_extension(name) else 'no '} {name}: {meaning}")

    project = config.project_name or "default"
    report.step("project", lambda: _exists(lxd, f"/1.0/projects/{project}", f"project {project}"))
    searched = ", ".join(p or "default" for p in instance_projects(config))
    report.info(f"without pool specs, runners are looked up in projects: {searched}")
    report.info(INTERFACE_ADVICE)
    profiles = ["default"] if config.include_default_profile else []
    wanted = list(provider.specs.profiles) if provider.specs.profiles is not None else [flavor]
    profiles += [name for name in wanted if name and name not in profiles]
    for profile in profiles:
        report.step(
            "profile",
            lambda p=profile: _exists(lxd, lxd.path(f"/1.0/profiles/{p}"), f"profile {p}"),  # type: ignore[misc]
        )
    _check_root_disk(report, lxd, profiles, provider.specs.devices)
    for name, remote in sorted(config.image_remotes.items()):
        report.info(f"image remote {name}: {redact_url(remote.addr)} ({remote.protocol})")
    if image:
        report.step("image", lambda: _image(lxd, config, image, provider.specs.image_remote))
        report.info("baking the runner in skips its download: image build (docs/runner-images.md)")
        out.write("\nCreateInstance would send (user data and URL credentials elided):\n")
        out.write(json.dumps(_sample_body(provider, image, flavor), indent=2) + "\n")
    out.write(f"\n{'all checks passed' if not report.failures else f'{report.failures} failed'}\n")
    return 0 if not report.failures else 1


def describe_policy(policy: PoolPolicy) -> str:
    """One line saying what the operator's [pool_policy] allows beyond the safe defaults."""
    parts = [
        f"{name} = [{', '.join(f'{value!r}' for value in values)}]"
        for name, values in (
            ("allow_config", policy.allow_config),
            ("allow_device_types", policy.allow_device_types),
            ("allow_projects", policy.allow_projects),
        )
        if values
    ]
    return "; ".join(parts) if parts else "safe defaults only (no [pool_policy] allowances)"


def _check_root_disk(
    report: Report, lxd: Any, profiles: list[str], devices: Mapping[str, Mapping[str, str]]
) -> None:
    """Warn when the runners' root disks live on a `dir` pool (an image unpack per create)."""
    from .lxd import quote

    roots: dict[str, str] = {}
    try:
        for profile in profiles:
            path = lxd.path(f"/1.0/profiles/{quote(profile, safe='')}")
            meta = lxd.call("GET", path).get("metadata") or {}
            roots.update(_root_pools(meta.get("devices") or {}))
        roots.update(_root_pools(devices))
        pool = roots.get("pool")
        if not pool:
            report.info("no root disk in the pool's profiles: LXD's default applies")
            return
        meta = lxd.call("GET", f"/1.0/storage-pools/{quote(pool, safe='')}").get("metadata") or {}
    except ProviderError as exc:
        report.info(f"storage: could not read the root disk's pool: {exc}")
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


def _exists(lxd: Any, path: str, what: str) -> str:
    lxd.call("GET", path)
    return f"{what} exists"


def _image(lxd: Any, config: Config, image: str, pool_remote: ImageRemote | None) -> str:
    from .images import image_source

    source = image_source(image, config.image_remotes, pool_remote)
    if "server" in source:
        return f"image {image} will be pulled from {redact_url(source['server'])} by the server"
    key = "aliases/" + source["alias"] if "alias" in source else source["fingerprint"]
    meta = lxd.call("GET", lxd.path(f"/1.0/images/{key}")).get("metadata") or {}
    return f"image {image} is on the server ({meta.get('target') or meta.get('fingerprint')})"


def _sample_body(provider: Any, image: str, flavor: str) -> dict[str, Any]:
    sample = {
        "name": "garm-sample",
        "arch": "amd64",
        "os_type": "linux",
        "pool_id": "<pool id>",
        "flavor": flavor,
        "image": image,
    }
    body: dict[str, Any] = provider.create_body(sample, b"<user data>")
    source = body.get("source")
    if isinstance(source, dict) and isinstance(source.get("server"), str):
        source["server"] = redact_url(source["server"])  # printed: no credentials
    return body
