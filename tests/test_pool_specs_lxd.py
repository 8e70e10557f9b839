"""Per-pool extra specs and ValidatePoolInfo against the real test LXD."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import create_runner, run_operator


@pytest.fixture
def profile(lxd_client: Any) -> Iterator[str]:
    """A second profile that sets a config key, removed after the test."""
    name = f"garm-test-{uuid.uuid4().hex[:8]}"
    lxd_client.profiles.create(name, config={"limits.processes": "500"}, devices={})
    yield name
    for inst in lxd_client.instances.all(recursion=1):  # instances still using it block the delete
        if name in inst.profiles:
            if inst.status == "Running":
                inst.stop(force=True, wait=True)
            inst.delete(wait=True)
    lxd_client.profiles.get(name).delete()


def _create(
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    extra_specs: dict[str, Any],
    **overrides: Any,
) -> tuple[Any, str]:
    proc, name, _ = create_runner(
        run_provider, provider_config, controller_id, extra_specs=extra_specs, **overrides
    )
    return proc, name


def test_pool_profiles_config_devices_and_ephemeral(
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    lxd_client: Any,
    profile: str,
) -> None:
    specs = {
        "profiles": ["default", profile],
        "config": {"limits.cpu": "1", "limits.memory": "256MiB"},
        "devices": {"scratch": {"type": "disk", "source": "/tmp", "path": "/mnt/scratch"}},
        "ephemeral": False,
    }
    # A host path is refused unless the operator's pool policy allows disks from the host.
    with provider_config.open("a") as config:
        config.write('\n[pool_policy]\nallow_device_types = ["disk"]\n')
    proc, name = _create(run_provider, provider_config, controller_id, specs)
    assert proc.returncode == 0, proc.stderr
    inst = lxd_client.instances.get(name)
    assert inst.profiles == ["default", profile]
    assert inst.config["limits.cpu"] == "1"
    assert inst.config["limits.memory"] == "256MiB"
    assert inst.config["user.runner-controller-id"] == controller_id
    assert inst.devices["scratch"]["path"] == "/mnt/scratch"
    assert inst.ephemeral is False
    assert inst.status == "Running"


def test_pool_config_cannot_override_provider_keys(
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    lxd_client: Any,
) -> None:
    specs = {"config": {"user.runner-controller-id": "someone-else"}}
    proc, name = _create(run_provider, provider_config, controller_id, specs)
    assert proc.returncode == 1
    assert "config.user.runner-controller-id" in proc.stderr.decode()
    # Not a before/after listing: other tests share the daemon and create instances meanwhile.
    assert not lxd_client.instances.exists(name)


def test_virtual_machine_that_cannot_run_here_fails_cleanly(
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    lxd_client: Any,
) -> None:
    # VMs cannot run on this machine (no vhost_vsock) and busybox is a container image: the
    # server refuses at some step, and the provider must report it and leave nothing behind.
    specs = {"instance_type": "virtual-machine", "secure_boot": False}
    proc, name = _create(run_provider, provider_config, controller_id, specs)
    assert proc.returncode == 1
    assert proc.stderr.decode().count("\n") == 1
    assert not lxd_client.instances.exists(name)


@pytest.mark.parametrize("secure_boot", [True, False])
def test_check_shows_the_secure_boot_key_this_server_understands(
    provider_bin: str, lxd_env: Any, lxd_client: Any, tmp_path: Path, secure_boot: bool
) -> None:
    config = tmp_path / "vm.toml"
    config.write_text(
        f'unix_socket_path = "{lxd_env.socket}"\ninstance_type = "virtual-machine"\n'
        f"secure_boot = {str(secure_boot).lower()}\n"
    )
    proc = run_operator(
        provider_bin, "check", "--config", str(config), "--image", "busybox", timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    body = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert body["type"] == "virtual-machine"
    if "instance_boot_mode" in lxd_client.host_info["api_extensions"]:
        expected = {"boot.mode": "uefi-secureboot" if secure_boot else "uefi-nosecureboot"}
    else:
        expected = {"security.secureboot": str(secure_boot).lower()}
    assert expected.items() <= body["config"].items()
    assert "boot.mode" not in body["config"] or "security.secureboot" not in body["config"]


def _validate(
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    extra_specs: object,
    stdin: bytes = b"",
) -> Any:
    return run_provider(
        "ValidatePoolInfo",
        config=provider_config,
        controller_id=controller_id,
        interface_version="v0.1.1",
        extra_specs=extra_specs,
        stdin=stdin,
    )


def test_validate_pool_info_accepts_a_usable_pool(
    run_provider: Callable[..., Any], provider_config: Path, controller_id: str, profile: str
) -> None:
    pool = json.dumps({"image": "busybox", "flavor": "default"}).encode()
    proc = _validate(run_provider, provider_config, controller_id, {"profiles": [profile]}, pool)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b""


@pytest.mark.parametrize(
    ("specs", "pool", "message"),
    [
        ({"profiles": ["no-such-profile"]}, {}, "profile no-such-profile does not exist"),
        ({"project": "no-such-project"}, {}, "project no-such-project does not exist"),
        ({}, {"image": "no-such-image"}, "image no-such-image does not exist"),
        ({}, {"flavor": "nope"}, "profile nope does not exist"),
        ({"target": "no-such-member"}, {}, "cluster member no-such-member"),
        ({"instance_type": "vm"}, {}, "instance_type"),
    ],
)
def test_validate_pool_info_names_what_is_missing(
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    specs: dict[str, Any],
    pool: dict[str, Any],
    message: str,
) -> None:
    stdin = json.dumps(pool).encode() if pool else b""
    # The pool policy lets this project by; the server then says it does not exist.
    with provider_config.open("a") as config:
        config.write('\n[pool_policy]\nallow_projects = ["no-such-project"]\n')
    proc = _validate(run_provider, provider_config, controller_id, specs, stdin)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert message in err
    assert err.count("\n") == 1
