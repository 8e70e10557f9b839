"""Fixtures of the reliability suite; test modules load them with pytest_plugins."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LxdEnv

from reliability.faultproxy import FaultProxy
from reliability.harness import (
    Outcome,
    Provider,
    garm_env,
    remove_instance,
    remove_tagged,
    run,
    socket_config,
)
from reliability.tlsenv import Tls, https_listener, self_signed, trust_fingerprints, trusted

# Small deadlines so that every injected hang ends quickly; GARM itself waits minutes.
REQUEST_TIMEOUT = 2.0
OPERATION_TIMEOUT = 6.0
# Bounds a provider run that faces a fault; far above the deadlines above, far below GARM's.
FAULT_RUN_DEADLINE = 90.0


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="garm-rel-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fault_proxy(lxd_env: LxdEnv, short_dir: Path) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the test daemon's socket."""
    with FaultProxy(lxd_env.socket, str(short_dir / "lxd.sock")) as proxy:
        yield proxy


@pytest.fixture
def proxy_config(tmp_path: Path, fault_proxy: FaultProxy) -> Path:
    """A config that reaches LXD through the fault proxy, with small deadlines."""
    return socket_config(
        tmp_path / "proxy.toml",
        fault_proxy.path,
        request_timeout_seconds=REQUEST_TIMEOUT,
        operation_timeout_seconds=OPERATION_TIMEOUT,
        address_wait_seconds=3,
    )


@pytest.fixture
def direct_config(tmp_path: Path, lxd_env: LxdEnv) -> Path:
    """A config that reaches the test daemon directly, with GARM-like deadlines."""
    return socket_config(tmp_path / "direct.toml", lxd_env.socket, address_wait_seconds=3)


@pytest.fixture
def controller(lxd_client: Any) -> Iterator[str]:
    """A fresh controller id; its instances are removed after the test."""
    value = str(uuid.uuid4())
    yield value
    remove_tagged(lxd_client, value)


@pytest.fixture
def other_controller(lxd_client: Any) -> Iterator[str]:
    """A second controller id whose instances are removed after the test."""
    value = str(uuid.uuid4())
    yield value
    remove_tagged(lxd_client, value)


@pytest.fixture
def untagged(lxd_client: Any) -> Iterator[str]:
    """A running instance that carries no GARM tags at all."""
    name = f"bystander-{uuid.uuid4().hex[:10]}"
    inst = lxd_client.instances.create(
        {"name": name, "source": {"type": "image", "alias": "busybox"}}, wait=True
    )
    inst.start(wait=True)
    yield name
    remove_instance(lxd_client, name)


@pytest.fixture
def provider(provider_bin: str, controller: str) -> Provider:
    """Run one GARM command as GARM does, for the `controller` fixture's id by default."""

    def call(
        command: str,
        config: Path,
        *,
        name: str = "",
        boot: dict[str, Any] | None = None,
        as_controller: str | None = None,
        pool_id: str = "",
        timeout: float = FAULT_RUN_DEADLINE,
    ) -> Outcome:
        stdin = b"" if boot is None else json.dumps(boot).encode()
        env = garm_env(
            command,
            config,
            as_controller or controller,
            pool_id=pool_id or (boot or {}).get("pool_id", ""),
            instance_id=name,
            extra_specs=(boot or {}).get("extra_specs"),
        )
        return run(provider_bin, env, stdin, timeout=timeout)

    return call


@pytest.fixture(scope="module")
def tls(
    lxd_env: LxdEnv, lxd_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tls]:
    """HTTPS on the daemon's namespace loopback with one trusted client certificate."""
    directory = tmp_path_factory.mktemp("tls")
    client = self_signed(directory, "garm-client")
    before_trust = trust_fingerprints(lxd_client)
    before_config = lxd_client.api.get().json()["metadata"]["config"]
    with https_listener(lxd_client) as address, trusted(lxd_client, client, "garm-reliability"):
        yield Tls(
            url=f"https://{address}",
            server_cert=Path(lxd_env.lxd_dir) / "server.crt",
            client=client,
            stranger=self_signed(directory, "garm-stranger"),
            impostor=self_signed(directory, "garm-impostor"),
            ca=self_signed(directory, "garm-ca", ca=True),
            netns=lxd_env.netns,
        )
    # The server is left as it was found.
    assert trust_fingerprints(lxd_client) == before_trust
    after_config = lxd_client.api.get().json()["metadata"]["config"]
    assert after_config.get("core.https_address") == before_config.get("core.https_address")
