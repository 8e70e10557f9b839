"""Every GARM command, run as GARM runs it, against the private Incus daemon (incus-up.sh)."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pylxd
import pytest
from conftest import (
    CONTROLLER_ID_KEY,
    RunProvider,
    create_runner,
    delete_controller_instances,
    socket_config,
)
from lxd_projects import (
    allowing_config,
    drop_project,
    make_project,
    names_in,
    plant,
    status_in,
)

# Type-only: importing the fixture module would load it before pytest_plugins does.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from incus_daemon import IncusEnv

pytestmark = pytest.mark.incus
pytest_plugins = ["incus_daemon"]

INCUS_SUBNET = ipaddress.ip_network("10.162.0.0/24")
# The extensions incus-up.sh reports on (docs/clusters-and-incus.md, "What differs for the
# provider"), and which of them the provider must do without on Incus 6.0: it has no force
# delete, no boot.mode, no selective recursion.
RELEVANT_EXTENSIONS = {
    "instance_create_start",
    "instance_force_delete",
    "api_filtering",
    "instances_state_selective_recursion",
    "cloud_init",
    "instance_boot_mode",
    "operation_wait",
    "instance_get_full",
}


@pytest.fixture
def incus_config(tmp_path: Path, incus_env: IncusEnv) -> Path:
    """A provider config whose unix_socket_path is the Incus socket."""
    return socket_config(tmp_path / "garm-provider-lxd-incus.toml", incus_env.socket)


@pytest.fixture
def incus_controller(incus_client: pylxd.Client) -> Iterator[str]:
    """A fresh controller id; its instances on the Incus server are deleted afterwards."""
    value = str(uuid.uuid4())
    yield value
    delete_controller_instances(incus_client, value)


@pytest.fixture
def garm(
    run_provider: RunProvider, incus_config: Path, incus_controller: str
) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run one provider command against Incus with GARM's environment."""

    def run(command: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        kwargs.setdefault("controller_id", incus_controller)
        return run_provider(command, config=incus_config, **kwargs)

    return run


@pytest.fixture
def create(
    run_provider: RunProvider, incus_config: Path, incus_controller: str
) -> Callable[..., tuple[subprocess.CompletedProcess[bytes], str]]:
    """Run CreateInstance on Incus for a fresh runner name in the given pool."""

    def make(
        pool_id: str, controller_id: str = "", interface_version: str = "v0.1.1"
    ) -> tuple[subprocess.CompletedProcess[bytes], str]:
        proc, name, _ = create_runner(
            run_provider,
            incus_config,
            controller_id or incus_controller,
            name=f"garm-incus-{uuid.uuid4().hex[:10]}",
            interface_version=interface_version,
            pool_id=pool_id,
        )
        return proc, name

    return make


def test_server_is_incus_and_pylxd_speaks_to_it(
    incus_env: IncusEnv, incus_client: pylxd.Client
) -> None:
    environment = incus_client.host_info["environment"]
    assert environment["server"] == "incus"
    assert incus_client.images.get_by_alias(incus_env.image).fingerprint
    assert incus_env.bridge in {n.name for n in incus_client.networks.all()}
    # incus-up.sh reports exactly the relevant extensions the server advertises.
    advertised = set(incus_client.host_info["api_extensions"])
    assert incus_env.extensions == RELEVANT_EXTENSIONS & advertised


def test_incus_refuses_force_delete_without_the_extension(
    incus_env: IncusEnv, incus_client: pylxd.Client, incus_controller: str
) -> None:
    """Why the provider must branch: DELETE ?force=true is refused where it is not advertised."""
    if "instance_force_delete" in incus_env.extensions:
        pytest.skip("this Incus advertises instance_force_delete")
    name = f"garm-incus-{uuid.uuid4().hex[:10]}"
    source = {"type": "image", "alias": incus_env.image}
    instance = incus_client.instances.create(
        {"name": name, "source": source, "config": {CONTROLLER_ID_KEY: incus_controller}},
        wait=True,
    )
    instance.start(wait=True)
    with pytest.raises(pylxd.exceptions.LXDAPIException, match="running"):
        incus_client.api.instances[name].delete(params={"force": "true"})
    assert incus_client.instances.get(name).status == "Running"


@pytest.mark.parametrize("version", ["v0.1.0", "v0.1.1"])
def test_full_lifecycle_on_incus(
    create: Callable[..., tuple[subprocess.CompletedProcess[bytes], str]],
    garm: Callable[..., subprocess.CompletedProcess[bytes]],
    incus_client: pylxd.Client,
    incus_controller: str,
    version: str,
) -> None:
    pool_id = str(uuid.uuid4())
    created, name = create(pool_id, interface_version=version)
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    assert (result["provider_id"], result["name"], result["status"]) == (name, name, "running")
    assert result["os_name"] == "busybox"
    addresses = [ipaddress.ip_address(a["address"]) for a in result["addresses"]]
    assert any(address in INCUS_SUBNET for address in addresses), result["addresses"]
    instance = incus_client.instances.get(name)
    assert instance.status == "Running"
    assert instance.config[CONTROLLER_ID_KEY] == incus_controller
    assert instance.config["user.runner-pool-id"] == pool_id
    user_data = instance.config.get("cloud-init.user-data") or instance.config["user.user-data"]
    assert user_data.startswith("#cloud-config\n")

    listed = garm("ListInstances", pool_id=pool_id, interface_version=version)
    assert listed.returncode == 0, listed.stderr
    assert [(i["name"], i["status"]) for i in json.loads(listed.stdout)] == [(name, "running")]

    got = garm("GetInstance", pool_id=pool_id, instance_id=name, interface_version=version)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["provider_id"] == name

    for command, server_status, garm_status in [
        ("StopInstance", "Stopped", "stopped"),
        ("StartInstance", "Running", "running"),
    ]:
        proc = garm(command, pool_id=pool_id, instance_id=name, interface_version=version)
        assert (proc.returncode, proc.stdout.strip()) == (0, b""), proc.stderr
        assert incus_client.instances.get(name).status == server_status
        got = garm("GetInstance", pool_id=pool_id, instance_id=name, interface_version=version)
        assert json.loads(got.stdout)["status"] == garm_status

    # Running, and Incus 6.0 has no instance_force_delete: the provider must stop it first.
    deleted = garm("DeleteInstance", pool_id=pool_id, instance_id=name, interface_version=version)
    assert (deleted.returncode, deleted.stdout.strip()) == (0, b""), deleted.stderr
    assert not incus_client.instances.exists(name)
    again = garm("DeleteInstance", pool_id=pool_id, instance_id=name, interface_version=version)
    assert again.returncode in (0, 30), again.stderr
    missing = garm("GetInstance", pool_id=pool_id, instance_id=name, interface_version=version)
    assert (missing.returncode, missing.stdout) == (30, b"")


def test_duplicate_create_exits_31(
    create: Callable[..., tuple[subprocess.CompletedProcess[bytes], str]],
    garm: Callable[..., subprocess.CompletedProcess[bytes]],
    bootstrap: Callable[..., dict[str, Any]],
    incus_client: pylxd.Client,
) -> None:
    pool_id = str(uuid.uuid4())
    created, name = create(pool_id)
    assert created.returncode == 0, created.stderr
    boot = bootstrap(name, pool_id=pool_id)
    again = garm("CreateInstance", pool_id=pool_id, stdin=json.dumps(boot).encode())
    assert (again.returncode, again.stdout) == (31, b"")
    assert incus_client.instances.get(name).status == "Running"


def test_remove_all_instances_removes_only_this_controllers(
    create: Callable[..., tuple[subprocess.CompletedProcess[bytes], str]],
    garm: Callable[..., subprocess.CompletedProcess[bytes]],
    incus_client: pylxd.Client,
    incus_controller: str,
) -> None:
    other_controller = str(uuid.uuid4())
    try:
        ours = [create(str(uuid.uuid4())) for _ in range(2)]
        theirs = create(str(uuid.uuid4()), controller_id=other_controller)
        for proc, _ in [*ours, theirs]:
            assert proc.returncode == 0, proc.stderr
        stopped = garm("StopInstance", instance_id=ours[0][1])
        assert stopped.returncode == 0, stopped.stderr

        removed = garm("RemoveAllInstances")
        assert (removed.returncode, removed.stdout.strip()) == (0, b""), removed.stderr
        remaining = {i.name for i in incus_client.instances.all()}
        assert not {name for _, name in ours} & remaining
        assert theirs[1] in remaining
        listed = garm("ListInstances")
        assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    finally:
        delete_controller_instances(incus_client, other_controller)


@pytest.mark.parametrize("version", ["v0.1.0", "v0.1.1"])
def test_runner_in_an_allowed_project_without_specs_on_incus(
    run_provider: RunProvider,
    bootstrap: Callable[..., dict[str, Any]],
    incus_env: IncusEnv,
    incus_client: pylxd.Client,
    incus_controller: str,
    tmp_path: Path,
    version: str,
) -> None:
    """test_projects_v010_lxd.py on Incus (no force delete: stop, then delete, in the project)."""
    allowed = make_project(incus_client, "garm-v010-ok")
    other = make_project(incus_client, "garm-v010-no")
    try:
        config = allowing_config(tmp_path / "c.toml", incus_env.socket, [allowed])

        def garm(command: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
            kwargs.setdefault("controller_id", incus_controller)
            return run_provider(command, config=config, **kwargs)

        name = f"garm-incus-{uuid.uuid4().hex[:10]}"
        specs = {"project": allowed}
        boot = bootstrap(name, extra_specs=specs)
        pool_id = boot["pool_id"]
        created = garm(
            "CreateInstance", pool_id=pool_id, extra_specs=specs, stdin=json.dumps(boot).encode()
        )
        assert created.returncode == 0, created.stderr
        stray = f"garm-incus-{uuid.uuid4().hex[:10]}"
        plant(incus_env.socket, other, stray, incus_controller)
        theirs = f"garm-incus-{uuid.uuid4().hex[:10]}"
        plant(incus_env.socket, allowed, theirs, str(uuid.uuid4()))
        # v0.1.1 with a pool that has no specs: GARM_POOL_EXTRASPECS is base64 of null.
        no_specs: dict[str, Any] = {"interface_version": version, "extra_specs": None}

        got = garm("GetInstance", instance_id=name, pool_id=pool_id, **no_specs)
        assert (got.returncode, json.loads(got.stdout)["status"]) == (0, "running"), got.stderr
        listed = garm("ListInstances", **no_specs)
        assert [i["name"] for i in json.loads(listed.stdout)] == [name], listed.stderr
        for command, status in (("StopInstance", "Stopped"), ("StartInstance", "Running")):
            proc = garm(command, instance_id=name, pool_id=pool_id, **no_specs)
            assert proc.returncode == 0, proc.stderr
            assert status_in(incus_env.socket, allowed, name) == status
        for untouchable in (stray, theirs):
            proc = garm("StopInstance", instance_id=untouchable, **no_specs)
            assert proc.returncode == 30, proc.stderr
            assert garm("DeleteInstance", instance_id=untouchable, **no_specs).returncode == 0

        deleted = garm("DeleteInstance", instance_id=name, pool_id=pool_id, **no_specs)
        assert (deleted.returncode, deleted.stdout) == (0, b""), deleted.stderr
        assert names_in(incus_env.socket, allowed) == {theirs}
        assert names_in(incus_env.socket, other) == {stray}
        assert garm("GetInstance", instance_id=name, **no_specs).returncode == 30
    finally:
        for project in (allowed, other):
            drop_project(incus_env.socket, project)
