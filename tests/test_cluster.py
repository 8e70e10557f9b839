"""Placement on a three-member LXD cluster (tests/env/cluster-up.sh), raw and through GARM."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pylxd
import pytest
from cluster_daemon import CLUSTER_UP
from conftest import (
    CONTROLLER_ID_KEY,
    RunProvider,
    delete_controller_instances,
    run_env_script,
)

pytestmark = pytest.mark.cluster

# Every member has its own copy of the managed bridge, with this subnet.
CLUSTER_SUBNET = ipaddress.ip_network("10.164.0.0/24")
GROUPS = {"g1": {"member1"}, "g2": {"member2", "member3"}}


@dataclasses.dataclass(frozen=True)
class ClusterEnv:
    """The members' sockets (member name -> unix socket) and the image alias."""

    sockets: dict[str, str]
    image: str


@pytest.fixture(scope="session")
def cluster_env() -> ClusterEnv:
    """The test LXD cluster, brought up (idempotently) by tests/env/cluster-up.sh."""
    values = run_env_script(CLUSTER_UP)
    members = values["CLUSTER_MEMBERS"].split(",")
    return ClusterEnv(
        sockets=dict(zip(members, values["CLUSTER_SOCKETS"].split(","), strict=True)),
        image=values["CLUSTER_IMAGE"],
    )


@pytest.fixture(scope="session")
def cluster_client(cluster_env: ClusterEnv) -> pylxd.Client:
    """pylxd on member1's socket; any member answers for the whole cluster."""
    return pylxd.Client(endpoint=cluster_env.sockets["member1"])


@pytest.fixture
def cluster_controller(cluster_client: pylxd.Client) -> Iterator[str]:
    """A fresh controller id; its instances anywhere in the cluster are deleted afterwards."""
    value = str(uuid.uuid4())
    yield value
    delete_controller_instances(cluster_client, value)


def raw_create(client: pylxd.Client, image: str, controller: str, target: str) -> str:
    """POST /1.0/instances?target=... directly; returns the member the instance landed on."""
    name = f"garm-raw-{uuid.uuid4().hex[:10]}"
    body = {
        "name": name,
        "source": {"type": "image", "alias": image},
        "config": {CONTROLLER_ID_KEY: controller},
    }
    response = client.api.instances.post(json=body, params={"target": target})
    client.operations.wait_for_operation(response.json()["operation"])
    return str(client.instances.get(name).location)


def test_cluster_has_three_online_members_in_their_groups(cluster_client: pylxd.Client) -> None:
    members = cluster_client.api.cluster.members.get(params={"recursion": "1"}).json()["metadata"]
    assert {m["server_name"]: m["status"] for m in members} == {
        "member1": "Online",
        "member2": "Online",
        "member3": "Online",
    }
    for group, names in GROUPS.items():
        assert {m["server_name"] for m in members if group in m["groups"]} == names
    urls = {m["url"] for m in members}
    assert urls == {f"https://10.163.0.{n}:8443" for n in (11, 12, 13)}


@pytest.mark.parametrize(
    ("target", "members"),
    [
        ("member2", {"member2"}),
        ("member3", {"member3"}),
        ("@g1", {"member1"}),
        ("@g2", GROUPS["g2"]),
    ],
)
def test_raw_placement_by_member_and_group(
    cluster_env: ClusterEnv,
    cluster_client: pylxd.Client,
    cluster_controller: str,
    target: str,
    members: set[str],
) -> None:
    assert raw_create(cluster_client, cluster_env.image, cluster_controller, target) in members


def test_raw_group_placement_spreads_over_the_group(
    cluster_env: ClusterEnv, cluster_client: pylxd.Client, cluster_controller: str
) -> None:
    # LXD places on the group member with the fewest instances, so two land on both.
    placed = [
        raw_create(cluster_client, cluster_env.image, cluster_controller, "@g2") for _ in range(2)
    ]
    assert sorted(placed) == ["member2", "member3"]


# -- through the provider --------------------------------------------------------------------


def write_config(path: Path, socket: str) -> Path:
    """A provider config on the given member's socket."""
    path.write_text(
        f"unix_socket_path = {json.dumps(socket)}\n"
        "include_default_profile = false\n"
        'instance_type = "container"\n'
        'project_name = "default"\n'
    )
    return path


@pytest.fixture
def garm(
    run_provider: RunProvider,
    cluster_env: ClusterEnv,
    cluster_controller: str,
    tmp_path: Path,
) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run one provider command through the given member's socket (member1 by default)."""

    def run(command: str, via: str = "member1", **kwargs: Any) -> Any:
        config = write_config(tmp_path / f"{via}.toml", cluster_env.sockets[via])
        kwargs.setdefault("controller_id", cluster_controller)
        return run_provider(command, config=config, **kwargs)

    return run


def provider_create(
    garm: Callable[..., Any], bootstrap: Callable[..., dict[str, Any]], pool_id: str, target: str
) -> tuple[Any, str]:
    """CreateInstance in a pool whose extra specs place it on target."""
    name = f"garm-cl-{uuid.uuid4().hex[:10]}"
    specs = {"target": target}
    boot = bootstrap(name, pool_id=pool_id, extra_specs=specs)
    proc = garm(
        "CreateInstance", pool_id=pool_id, extra_specs=specs, stdin=json.dumps(boot).encode()
    )
    return proc, name


@pytest.mark.parametrize(
    ("target", "members"), [("member3", {"member3"}), ("@g2", GROUPS["g2"]), ("@g1", {"member1"})]
)
def test_provider_places_by_the_pool_target(
    garm: Callable[..., Any],
    bootstrap: Callable[..., dict[str, Any]],
    cluster_client: pylxd.Client,
    target: str,
    members: set[str],
) -> None:
    proc, name = provider_create(garm, bootstrap, str(uuid.uuid4()), target)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["name"], result["status"]) == (name, "running")
    addresses = [ipaddress.ip_address(a["address"]) for a in result["addresses"]]
    assert any(address in CLUSTER_SUBNET for address in addresses), result["addresses"]
    assert cluster_client.instances.get(name).location in members


@pytest.mark.parametrize("target", ["member9", "@nogroup"])
def test_provider_rejects_an_unknown_target_and_leaves_nothing(
    garm: Callable[..., Any],
    bootstrap: Callable[..., dict[str, Any]],
    cluster_client: pylxd.Client,
    target: str,
) -> None:
    proc, name = provider_create(garm, bootstrap, str(uuid.uuid4()), target)
    assert not cluster_client.instances.exists(name)
    assert proc.stderr.decode().count("\n") == 1
    assert (proc.returncode, proc.stdout) == (1, b"")


def test_provider_lists_and_manages_instances_on_every_member(
    garm: Callable[..., Any], bootstrap: Callable[..., dict[str, Any]], cluster_client: pylxd.Client
) -> None:
    pool_id = str(uuid.uuid4())
    placed = {}
    for member in ("member1", "member2", "member3"):
        proc, name = provider_create(garm, bootstrap, pool_id, member)
        assert proc.returncode == 0, proc.stderr
        placed[name] = member
    assert {n: cluster_client.instances.get(n).location for n in placed} == placed

    # Any member answers for all of them.
    for via in ("member2", "member3"):
        listed = garm("ListInstances", via=via, pool_id=pool_id)
        assert listed.returncode == 0, listed.stderr
        assert {(i["name"], i["status"]) for i in json.loads(listed.stdout)} == {
            (name, "running") for name in placed
        }

    # Stop, start and delete each instance through a member it does not live on.
    for name, member in placed.items():
        via = "member1" if member != "member1" else "member2"
        for command, status in (("StopInstance", "Stopped"), ("StartInstance", "Running")):
            proc = garm(command, via=via, pool_id=pool_id, instance_id=name)
            assert (proc.returncode, proc.stdout.strip()) == (0, b""), proc.stderr
            assert cluster_client.instances.get(name).status == status
        got = garm("GetInstance", via=via, pool_id=pool_id, instance_id=name)
        assert json.loads(got.stdout)["status"] == "running"
        deleted = garm("DeleteInstance", via=via, pool_id=pool_id, instance_id=name)
        assert (deleted.returncode, deleted.stdout.strip()) == (0, b""), deleted.stderr
        assert not cluster_client.instances.exists(name)


def test_remove_all_instances_reaches_every_member(
    garm: Callable[..., Any], bootstrap: Callable[..., dict[str, Any]], cluster_client: pylxd.Client
) -> None:
    names = []
    for member in ("member1", "member2", "member3"):
        proc, name = provider_create(garm, bootstrap, str(uuid.uuid4()), member)
        assert proc.returncode == 0, proc.stderr
        names.append(name)
    removed = garm("RemoveAllInstances", via="member3")
    assert removed.returncode == 0, removed.stderr
    assert not {i.name for i in cluster_client.instances.all()} & set(names)


def test_setup_learns_the_host_addresses_of_every_member(cluster_client: pylxd.Client) -> None:
    # setup's ACL rejects the LXD host's own addresses; on a cluster every member is a host.
    from garm_provider_lxd.admin.host_addresses import host_addresses

    found = {str(address) for address in host_addresses(cluster_client)}
    assert {"10.163.0.11", "10.163.0.12", "10.163.0.13"} <= found  # clnet0 of each member
