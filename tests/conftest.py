"""Shared fixtures: the test LXD daemon, the provider executable, GARM's calling convention."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, Protocol

import pylxd
import pytest

from garm_provider_lxd._native import LxdTransport
from garm_provider_lxd.lxd import Lxd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testdata"))
# Re-exported: the tests import GARM's calling convention from here. test_lxd_env.py checks that
# TEST_IMAGE is the image lxd-up.sh imports.
from garm_harness import TEST_IMAGE as TEST_IMAGE
from garm_harness import bootstrap_payload as bootstrap_payload
from garm_harness import encode_extra_specs as encode_extra_specs
from garm_harness import garm_env as garm_env
from garm_harness import run_provider as run_once
from garm_harness import socket_config as socket_config

REPO_ROOT = Path(__file__).resolve().parent.parent
LXD_UP = REPO_ROOT / "tests" / "env" / "lxd-up.sh"
CONFORMANCE_CASES = REPO_ROOT / "testdata" / "conformance" / "cases"
PROVIDER_SCRIPT = "garm-provider-lxd"
CONTROLLER_ID_KEY = "user.runner-controller-id"
# The first run on a fresh machine installs packages and builds the image; later runs are fast.
ENV_UP_TIMEOUT = 900.0


@dataclasses.dataclass(frozen=True)
class LxdEnv:
    """Where the test LXD daemon lives and the names of what lxd-up.sh set up in it."""

    socket: str
    lxd_dir: str
    netns: str
    bridge: str
    image: str
    profile: str
    pool: str = "default"


class RunProvider(Protocol):
    """Runs the provider executable the way GARM does."""

    def __call__(
        self,
        command: str,
        *,
        config: Path,
        controller_id: str,
        pool_id: str = "",
        instance_id: str = "",
        interface_version: str = "v0.1.1",
        extra_specs: object = None,
        stdin: bytes = b"",
        extra_env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[bytes]: ...


def run_env_script(script: Path, timeout: float = ENV_UP_TIMEOUT) -> dict[str, str]:
    """Run a daemon set-up script of tests/env (idempotent) and return the KEY=VALUE it printed."""
    try:
        done = subprocess.run(
            ["bash", str(script)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{script} did not finish in {timeout:.0f} s", pytrace=False)
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace")[-4000:]
        pytest.fail(f"{script} failed (exit {done.returncode}):\n{stderr}", pytrace=False)
    values: dict[str, str] = {}
    for line in done.stdout.decode().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the test LXD daemon with `lxd`."""
    for item in items:
        if "lxd_env" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lxd)


@pytest.fixture(scope="session")
def lxd_env() -> LxdEnv:
    """The private test LXD daemon, brought up (idempotently) by tests/env/lxd-up.sh."""
    values = run_env_script(LXD_UP)
    return LxdEnv(
        socket=values["LXD_SOCKET"],
        lxd_dir=values["LXD_DIR"],
        netns=values["LXD_NETNS"],
        bridge=values["LXD_BRIDGE"],
        image=values["LXD_IMAGE"],
        profile=values["LXD_PROFILE"],
        pool=values["LXD_POOL"],
    )


@pytest.fixture
def transport(lxd_env: LxdEnv) -> LxdTransport:
    """A native transport to the test LXD daemon's unix socket."""
    return LxdTransport(unix_socket=lxd_env.socket, timeout=30.0)


@pytest.fixture(scope="session")
def lxd_client(lxd_env: LxdEnv) -> pylxd.Client:
    """An independent pylxd view of the test server, for assertions."""
    return pylxd.Client(endpoint=lxd_env.socket)


@pytest.fixture(scope="session")
def provider_bin() -> str:
    """Absolute path of the installed garm-provider-lxd console script."""
    candidates = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
    for directory in candidates:
        path = directory / PROVIDER_SCRIPT
        if path.is_file() and os.access(path, os.X_OK):
            return str(path.absolute())
    pytest.fail(
        f"{PROVIDER_SCRIPT} is not installed next to {sys.executable}; "
        "install the package into this interpreter (pip install -e . or maturin develop)",
        pytrace=False,
    )


@pytest.fixture
def provider_config(tmp_path: Path, lxd_env: LxdEnv) -> Path:
    """A provider TOML config pointing at the test daemon's socket."""
    return socket_config(tmp_path / "garm-provider-lxd.toml", lxd_env.socket)


def run_operator(
    provider_bin: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run an operator subcommand as a person would, with an empty environment; text output."""
    return subprocess.run(
        [provider_bin, *args], capture_output=True, text=True, env={}, timeout=timeout, check=False
    )


@pytest.fixture
def setup_names(lxd_client: pylxd.Client) -> Iterator[dict[str, str]]:
    """Unique names for `setup`'s objects; everything it created is removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    octets = int(suffix, 16)
    names = {
        "project": f"garmp-{suffix}",
        "network": f"garms{suffix}",
        "acl": f"garm-acl-{suffix}",
        "profile": f"garm-runner-{suffix}",
        "pool": f"garm-cow-{suffix}",
        "subnet": f"10.{180 + octets % 40}.{octets // 40 % 250}.1/24",
    }
    yield names
    api = lxd_client.api
    with contextlib.suppress(pylxd.exceptions.NotFound):
        api.profiles[names["profile"]].delete(params={"project": names["project"]})
    for path in (
        api.networks[names["network"]],
        api["network-acls"][names["acl"]],
        api.projects[names["project"]],
        api["storage-pools"][names["pool"]],
    ):
        with contextlib.suppress(pylxd.exceptions.NotFound):  # not every test creates it
            path.delete()


def delete_controller_instances(
    client: pylxd.Client, controller_id: str, keep: Collection[str] = ()
) -> None:
    """Force-delete every instance tagged with the given GARM controller id, but those in keep."""
    # recursion=1: one request, and no lazy per-instance fetch that races other deletes.
    for instance in client.instances.all(recursion=1):
        if instance.config.get(CONTROLLER_ID_KEY) != controller_id or instance.name in keep:
            continue
        try:
            if instance.status != "Stopped":
                instance.stop(force=True, wait=True)
            instance.delete(wait=True)
        except pylxd.exceptions.NotFound:
            continue


@pytest.fixture
def controller_id(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh controller id; instances tagged with it are deleted after the test."""
    value = str(uuid.uuid4())
    # Only tests that use the daemon can have created instances; the others need no cleanup
    # and must not start LXD just for it.
    client: pylxd.Client | None = None
    if "lxd_env" in request.fixturenames:
        client = request.getfixturevalue("lxd_client")
    yield value
    if client is not None:
        delete_controller_instances(client, value)


def make_runner(provider_bin: str) -> RunProvider:
    """Return a callable that runs provider_bin with only GARM's environment and stdin."""

    def run(
        command: str,
        *,
        config: Path,
        controller_id: str,
        pool_id: str = "",
        instance_id: str = "",
        interface_version: str = "v0.1.1",
        extra_specs: object = None,
        stdin: bytes = b"",
        extra_env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[bytes]:
        env = garm_env(
            command,
            config,
            controller_id,
            pool_id=pool_id,
            instance_id=instance_id,
            extra_specs=extra_specs,
            interface_version=interface_version,
        )
        env.update(extra_env or {})
        return run_once(provider_bin, env, stdin, timeout=timeout)

    return run


def create_runner(
    run: RunProvider,
    config: Path,
    controller_id: str,
    *,
    name: str = "",
    interface_version: str = "v0.1.1",
    **overrides: Any,
) -> tuple[subprocess.CompletedProcess[bytes], str, dict[str, Any]]:
    """Run CreateInstance as GARM does (for a fresh name by default); (process, name, bootstrap)."""
    name = name or f"garm-{uuid.uuid4().hex[:12]}"
    boot = bootstrap_payload(name, **overrides)
    proc = run(
        "CreateInstance",
        config=config,
        controller_id=controller_id,
        pool_id=boot["pool_id"],
        interface_version=interface_version,
        extra_specs=boot.get("extra_specs"),
        stdin=json.dumps(boot).encode(),
    )
    return proc, name, boot


@pytest.fixture
def run_provider(provider_bin: str) -> RunProvider:
    """A callable that runs the provider with only GARM's environment and stdin."""
    return make_runner(provider_bin)


@pytest.fixture
def bootstrap() -> Callable[..., dict[str, Any]]:
    """A factory of realistic BootstrapInstance payloads for the test image."""

    def make(name: str, **overrides: Any) -> dict[str, Any]:
        return bootstrap_payload(name, **overrides)

    return make


class RecordingLxd(Lxd):
    """The real connection, recording what it is asked to send."""

    sent: list[tuple[str, str]]

    def raw(
        self, method: str, path: str, body: object = None, timeout: float | None = None
    ) -> tuple[int, bytes]:
        self.sent.append((method, path.split("?")[0]))
        return super().raw(method, path, body, timeout)

    def read_bounded(self, path: str, limit: int, timeout: float) -> tuple[int, bytes]:
        self.sent.append(("GET", path.split("?")[0]))
        return super().read_bounded(path, limit, timeout)

    def read_file_tail(
        self, name: str, file: str, max_bytes: int, timeout: float, *, lstat_first: bool = True
    ) -> tuple[str | None, bytes, int]:
        self.sent.append(("SFTP", file))
        return super().read_file_tail(name, file, max_bytes, timeout, lstat_first=lstat_first)
