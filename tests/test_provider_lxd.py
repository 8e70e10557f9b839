"""Every GARM command, run as GARM runs it, against the real test LXD daemon."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pylxd.exceptions
import pytest
from conftest import create_runner, delete_controller_instances

VERSIONS = ["v0.1.0", "v0.1.1"]


def _instance_names(lxd_client: Any) -> set[str]:
    return {inst.name for inst in lxd_client.instances.all(recursion=1)}


def _force_delete(lxd_client: Any, name: str) -> None:
    # Another test process may remove it first: gone is what we want either way.
    with contextlib.suppress(pylxd.exceptions.NotFound):
        inst = lxd_client.instances.get(name)
        if inst.status == "Running":
            inst.stop(force=True, wait=True)
        inst.delete(wait=True)


@pytest.fixture
def create(
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    bootstrap: Callable[..., dict[str, Any]],
) -> Callable[..., Any]:
    """Run CreateInstance for a fresh runner name; returns (process, name, bootstrap)."""

    def make(version: str = "v0.1.1", controller: str | None = None, **overrides: Any) -> Any:
        return create_runner(
            run_provider,
            provider_config,
            controller or controller_id,
            interface_version=version,
            **overrides,
        )

    return make


@pytest.fixture
def other_controller(lxd_client: Any) -> Iterator[str]:
    """A second GARM controller id whose instances are removed after the test."""
    other = str(uuid.uuid4())
    yield other
    delete_controller_instances(lxd_client, other)


def test_create_without_an_arch_makes_an_amd64_runner(
    create: Callable[..., Any], lxd_client: Any
) -> None:
    # A missing arch means amd64, as in the Go provider: the user data took it so already and
    # the create refused it ("bootstrap: arch: must be a non-empty string").
    proc, name, _ = create(arch=None)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["os_arch"] == "amd64"
    assert lxd_client.instances.get(name).architecture == "x86_64"


@pytest.mark.parametrize("version", VERSIONS)
def test_create_returns_a_running_instance_with_its_address(
    create: Callable[..., Any], lxd_client: Any, controller_id: str, version: str
) -> None:
    proc, name, boot = create(version)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["provider_id"] == name
    assert result["name"] == name
    assert result["status"] == "running"
    assert result["os_type"] == "linux"
    assert result["os_arch"] == "amd64"
    assert result["os_name"] == "busybox"
    assert any(a["address"].startswith("10.161.0.") for a in result["addresses"])

    inst = lxd_client.instances.get(name)
    assert inst.status == "Running"
    assert inst.config["user.runner-controller-id"] == controller_id
    assert inst.config["user.runner-pool-id"] == boot["pool_id"]
    assert inst.config["user.os-type"] == "linux"
    assert inst.config["user.os-arch"] == "amd64"
    user_data = inst.config.get("user.user-data") or inst.config.get("cloud-init.user-data")
    assert user_data.startswith("#cloud-config\n")
    assert inst.profiles == ["default"]


def test_create_of_an_existing_name_is_a_duplicate_and_leaves_it_alone(
    create: Callable[..., Any], lxd_client: Any
) -> None:
    proc, name, boot = create()
    assert proc.returncode == 0, proc.stderr
    before = lxd_client.instances.get(name)
    again, _, _ = create(name=name, pool_id=boot["pool_id"])
    assert again.returncode == 31
    assert again.stdout == b""
    assert name in again.stderr.decode()
    after = lxd_client.instances.get(name)
    assert after.status == "Running"
    assert after.created_at == before.created_at


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"flavor": "no-such-profile"}, "no-such-profile"),
        ({"image": "no-such-image"}, "no-such-image"),
        ({"name": "9-starts-with-a-digit"}, "not valid for LXD"),
        ({"arch": "i386"}, "i386"),
        ({"os_type": "freebsd"}, "freebsd"),
        ({"image": "nowhere:alias"}, "not configured"),
    ],
)
def test_failed_create_is_one_line_and_leaves_nothing(
    create: Callable[..., Any],
    lxd_client: Any,
    controller_id: str,
    overrides: dict[str, Any],
    message: str,
) -> None:
    proc, name, _ = create(**overrides)
    assert proc.returncode == 1
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert not lxd_client.instances.exists(name)
    assert not [
        inst.name
        for inst in lxd_client.instances.all(recursion=1)
        if inst.config.get("user.runner-controller-id") == controller_id
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_get_stop_start_delete_cycle(
    create: Callable[..., Any],
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    lxd_client: Any,
    version: str,
) -> None:
    proc, name, boot = create(version)
    assert proc.returncode == 0, proc.stderr

    def run(command: str, instance_id: str = name) -> Any:
        return run_provider(
            command,
            config=provider_config,
            controller_id=controller_id,
            pool_id=boot["pool_id"],
            instance_id=instance_id,
            interface_version=version,
        )

    got = run("GetInstance")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["status"] == "running"

    for _ in range(2):  # the second stop finds it stopped and still succeeds
        stopped = run("StopInstance")
        assert stopped.returncode == 0, stopped.stderr
        assert lxd_client.instances.get(name).status == "Stopped"
    assert json.loads(run("GetInstance").stdout)["status"] == "stopped"

    for _ in range(2):
        started = run("StartInstance")
        assert started.returncode == 0, started.stderr
        assert lxd_client.instances.get(name).status == "Running"

    deleted = run("DeleteInstance")
    assert deleted.returncode == 0, deleted.stderr
    assert not lxd_client.instances.exists(name)
    again = run("DeleteInstance")
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("command", ["GetInstance", "StartInstance", "StopInstance"])
def test_missing_instance_exits_30(
    run_provider: Callable[..., Any], provider_config: Path, controller_id: str, command: str
) -> None:
    proc = run_provider(
        command,
        config=provider_config,
        controller_id=controller_id,
        pool_id="p",
        instance_id="garm-does-not-exist",
    )
    assert proc.returncode == 30
    assert proc.stdout == b""
    assert "garm-does-not-exist" in proc.stderr.decode()


def test_delete_with_empty_pool_id_as_scale_sets_send_it(
    create: Callable[..., Any],
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    lxd_client: Any,
) -> None:
    proc, name, _ = create()
    assert proc.returncode == 0, proc.stderr
    deleted = run_provider(
        "DeleteInstance",
        config=provider_config,
        controller_id=controller_id,
        pool_id="",
        instance_id=name,
        extra_specs=None,
    )
    assert deleted.returncode == 0, deleted.stderr
    assert not lxd_client.instances.exists(name)


def test_other_controllers_instances_are_invisible_and_untouched(
    create: Callable[..., Any],
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    other_controller: str,
    lxd_client: Any,
) -> None:
    proc, theirs, boot = create(controller=other_controller)
    assert proc.returncode == 0, proc.stderr
    # Not ours is not found: 30 where GARM must hear "no such instance", and a delete of an
    # instance that is not there succeeds (GARM forgets the runner; theirs stays).
    expected = {"GetInstance": 30, "StartInstance": 30, "StopInstance": 30, "DeleteInstance": 0}
    for command, code in expected.items():
        result = run_provider(
            command,
            config=provider_config,
            controller_id=controller_id,
            pool_id=boot["pool_id"],
            instance_id=theirs,
        )
        assert result.returncode == code, (command, result.stderr)
        assert result.stdout == b"", command
    assert lxd_client.instances.get(theirs).status == "Running"


def test_list_returns_only_this_controllers_pool(
    create: Callable[..., Any],
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    other_controller: str,
    lxd_client: Any,
    lxd_env: Any,
) -> None:
    pool_a, pool_b = str(uuid.uuid4()), str(uuid.uuid4())
    mine_a = [create(pool_id=pool_a) for _ in range(2)]
    mine_b = create(pool_id=pool_b)
    theirs = create(controller=other_controller, pool_id=pool_a)
    for proc, _, _ in [*mine_a, mine_b, theirs]:
        assert proc.returncode == 0, proc.stderr
    untagged = f"untagged-{uuid.uuid4().hex[:8]}"
    lxd_client.instances.create(
        {"name": untagged, "source": {"type": "image", "alias": lxd_env.image}}, wait=True
    )
    try:
        stop = run_provider(
            "StopInstance",
            config=provider_config,
            controller_id=controller_id,
            pool_id=pool_a,
            instance_id=mine_a[1][1],
        )
        assert stop.returncode == 0, stop.stderr

        def listing(pool_id: str, version: str) -> dict[str, str]:
            proc = run_provider(
                "ListInstances",
                config=provider_config,
                controller_id=controller_id,
                pool_id=pool_id,
                interface_version=version,
            )
            assert proc.returncode == 0, proc.stderr
            return {item["name"]: item["status"] for item in json.loads(proc.stdout)}

        for version in VERSIONS:
            assert listing(pool_a, version) == {
                mine_a[0][1]: "running",
                mine_a[1][1]: "stopped",
            }
            assert listing(pool_b, version) == {mine_b[1]: "running"}
        assert set(listing("", "v0.1.1")) == {mine_a[0][1], mine_a[1][1], mine_b[1]}
        assert listing(str(uuid.uuid4()), "v0.1.1") == {}
    finally:
        _force_delete(lxd_client, untagged)


def test_remove_all_removes_only_this_controllers_instances(
    create: Callable[..., Any],
    run_provider: Callable[..., Any],
    provider_config: Path,
    controller_id: str,
    other_controller: str,
    lxd_client: Any,
) -> None:
    mine = [create() for _ in range(3)]
    theirs = create(controller=other_controller)
    for proc, _, _ in [*mine, theirs]:
        assert proc.returncode == 0, proc.stderr
    removed = run_provider(
        "RemoveAllInstances", config=provider_config, controller_id=controller_id
    )
    assert removed.returncode == 0, removed.stderr
    names = _instance_names(lxd_client)
    assert not {name for _, name, _ in mine} & names
    assert theirs[1] in names
