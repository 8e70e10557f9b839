"""Runners in a pool's own project, driven without pool specs (v0.1.0), on the real test LXD.

GARM passes a pool's extra specs only to CreateInstance under v0.1.0 (and under v0.1.1 when the
pool has none, GARM_POOL_EXTRASPECS is base64 of `null`): the other commands must find a runner
in any project the config allows (`project_name` plus `[pool_policy] allow_projects`), and must
not touch anything outside those projects or of another controller.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pylxd
import pytest
from conftest import CONTROLLER_ID_KEY, LxdEnv, RunProvider
from lxd_projects import (
    allowing_config,
    drop_project,
    make_project,
    names_in,
    plant,
    status_in,
)

from garm_provider_lxd.config import parse_config
from garm_provider_lxd.provider import Provider

Garm = Callable[..., subprocess.CompletedProcess[bytes]]
# (interface version, what GARM_POOL_EXTRASPECS carries): both mean "no specs".
NO_SPECS = [("v0.1.0", None), ("v0.1.1", None)]


@pytest.fixture
def projects(lxd_env: LxdEnv, lxd_client: pylxd.Client) -> Iterator[tuple[str, str]]:
    """(a project the config allows, one it does not), both removed with their instances."""
    allowed = make_project(lxd_client, "garm-v010-ok")
    other = make_project(lxd_client, "garm-v010-no")
    yield allowed, other
    for name in (allowed, other):
        drop_project(lxd_env.socket, name)


@pytest.fixture
def config(tmp_path: Path, lxd_env: LxdEnv, projects: tuple[str, str]) -> Path:
    """project_name = default, allow_projects = [the allowed project]."""
    return allowing_config(tmp_path / "c.toml", lxd_env.socket, [projects[0]])


@pytest.fixture
def garm(run_provider: RunProvider, config: Path, controller_id: str) -> Garm:
    """Run one command as GARM does, with this test's controller and config."""

    def run(command: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        kwargs.setdefault("controller_id", controller_id)
        kwargs.setdefault("config", config)
        return run_provider(command, **kwargs)

    return run


def create_in(
    garm: Garm, bootstrap: Callable[..., dict[str, Any]], project: str, **kwargs: Any
) -> tuple[str, str]:
    """CreateInstance of a fresh runner of a pool whose specs name project; (name, pool id)."""
    name = f"garm-v010-{uuid.uuid4().hex[:10]}"
    specs = {"project": project}
    boot = bootstrap(name, extra_specs=specs)
    proc = garm(
        "CreateInstance",
        pool_id=boot["pool_id"],
        extra_specs=specs,
        stdin=json.dumps(boot).encode(),
        **kwargs,
    )
    assert proc.returncode == 0, proc.stderr
    return name, boot["pool_id"]


@pytest.mark.parametrize(("version", "specs"), NO_SPECS)
def test_runner_in_an_allowed_project_is_managed_without_specs(
    garm: Garm,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_env: LxdEnv,
    projects: tuple[str, str],
    version: str,
    specs: object,
) -> None:
    allowed = projects[0]
    name, pool_id = create_in(garm, bootstrap, allowed, interface_version=version)
    assert name in names_in(lxd_env.socket, allowed)
    no_specs: dict[str, Any] = {"interface_version": version, "extra_specs": specs}

    got = garm("GetInstance", instance_id=name, pool_id=pool_id, **no_specs)
    assert got.returncode == 0, got.stderr
    assert (json.loads(got.stdout)["name"], json.loads(got.stdout)["status"]) == (name, "running")

    listed = garm("ListInstances", pool_id=pool_id, **no_specs)
    assert listed.returncode == 0, listed.stderr
    assert [i["name"] for i in json.loads(listed.stdout)] == [name]
    everything = garm("ListInstances", **no_specs)
    assert name in [i["name"] for i in json.loads(everything.stdout)]

    for command, status in (("StopInstance", "Stopped"), ("StartInstance", "Running")):
        proc = garm(command, instance_id=name, pool_id=pool_id, **no_specs)
        assert (proc.returncode, proc.stdout) == (0, b""), proc.stderr
        assert status_in(lxd_env.socket, allowed, name) == status

    deleted = garm("DeleteInstance", instance_id=name, pool_id=pool_id, **no_specs)
    assert (deleted.returncode, deleted.stdout) == (0, b""), deleted.stderr
    assert name not in names_in(lxd_env.socket, allowed)
    assert name not in names_in(lxd_env.socket, "default")
    gone = garm("GetInstance", instance_id=name, pool_id=pool_id, **no_specs)
    assert gone.returncode == 30
    assert allowed in gone.stderr.decode()  # says where it looked


@pytest.mark.parametrize(("version", "specs"), NO_SPECS)
def test_instance_in_a_project_not_allowed_is_not_touched(
    garm: Garm,
    lxd_env: LxdEnv,
    projects: tuple[str, str],
    controller_id: str,
    version: str,
    specs: object,
) -> None:
    other = projects[1]
    name = f"garm-v010-{uuid.uuid4().hex[:10]}"
    plant(lxd_env.socket, other, name, controller_id, start=True)
    no_specs: dict[str, Any] = {"interface_version": version, "extra_specs": specs}

    for command in ("GetInstance", "StopInstance", "StartInstance"):
        proc = garm(command, instance_id=name, **no_specs)
        assert (proc.returncode, proc.stdout) == (30, b""), (command, proc.stderr)
    assert garm("DeleteInstance", instance_id=name, **no_specs).returncode == 0
    listed = garm("ListInstances", **no_specs)
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    assert garm("RemoveAllInstances", **no_specs).returncode == 0
    assert status_in(lxd_env.socket, other, name) == "Running"


def test_another_controllers_instance_in_an_allowed_project_is_not_touched(
    garm: Garm,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_env: LxdEnv,
    projects: tuple[str, str],
) -> None:
    allowed = projects[0]
    theirs = str(uuid.uuid4())
    name, pool_id = create_in(garm, bootstrap, allowed, controller_id=theirs)
    v010: dict[str, Any] = {"interface_version": "v0.1.0"}

    for command in ("GetInstance", "StopInstance", "StartInstance"):
        proc = garm(command, instance_id=name, pool_id=pool_id, **v010)
        assert proc.returncode == 30, (command, proc.stderr)
        assert b"is not a runner of this GARM controller" in proc.stderr
    assert garm("DeleteInstance", instance_id=name, pool_id=pool_id, **v010).returncode == 0
    listed = garm("ListInstances", pool_id=pool_id, **v010)
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    assert garm("RemoveAllInstances", **v010).returncode == 0
    assert status_in(lxd_env.socket, allowed, name) == "Running"


def test_the_same_name_in_two_allowed_projects(
    garm: Garm, lxd_env: LxdEnv, projects: tuple[str, str], controller_id: str
) -> None:
    """Another controller's twin is skipped; two of ours is an error, and nothing is deleted."""
    allowed = projects[0]
    name = f"garm-v010-{uuid.uuid4().hex[:10]}"
    plant(lxd_env.socket, "default", name, str(uuid.uuid4()), arch="amd64")
    try:
        plant(lxd_env.socket, allowed, name, controller_id, arch="arm64")
        got = garm("GetInstance", instance_id=name, interface_version="v0.1.0")
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["os_arch"] == "arm64"  # ours, not the twin (amd64)

        twin = pylxd.Client(endpoint=lxd_env.socket).instances.get(name)
        twin.config[CONTROLLER_ID_KEY] = controller_id
        twin.save(wait=True)
        for command in ("GetInstance", "DeleteInstance"):
            proc = garm(command, instance_id=name, interface_version="v0.1.0")
            assert (proc.returncode, proc.stdout) == (1, b""), (command, proc.stderr)
            line = proc.stderr.decode()
            assert "several projects" in line and allowed in line and "default" in line
        assert name in names_in(lxd_env.socket, allowed)
        assert name in names_in(lxd_env.socket, "default")
    finally:
        drop = pylxd.Client(endpoint=lxd_env.socket).instances.get(name)
        drop.delete(wait=True)


def test_list_and_remove_all_cover_every_allowed_project(
    garm: Garm,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_env: LxdEnv,
    projects: tuple[str, str],
) -> None:
    allowed = projects[0]
    in_allowed, _ = create_in(garm, bootstrap, allowed)
    in_default, _ = create_in(garm, bootstrap, "default")
    listed = garm("ListInstances", interface_version="v0.1.0")
    assert listed.returncode == 0, listed.stderr
    assert sorted(i["name"] for i in json.loads(listed.stdout)) == sorted([in_allowed, in_default])
    removed = garm("RemoveAllInstances", interface_version="v0.1.0")
    assert (removed.returncode, removed.stdout) == (0, b""), removed.stderr
    assert in_allowed not in names_in(lxd_env.socket, allowed)
    assert in_default not in names_in(lxd_env.socket, "default")


def test_an_allowed_project_that_does_not_exist_holds_no_runners(
    run_provider: RunProvider, tmp_path: Path, lxd_env: LxdEnv, controller_id: str
) -> None:
    config = allowing_config(
        tmp_path / "c.toml", lxd_env.socket, [f"garm-absent-{uuid.uuid4().hex}"]
    )
    for command, code in (("ListInstances", 0), ("GetInstance", 30), ("DeleteInstance", 0)):
        proc = run_provider(
            command,
            config=config,
            controller_id=controller_id,
            instance_id="garm-nowhere",
            interface_version="v0.1.0",
        )
        assert proc.returncode == code, (command, proc.stderr)


class CountingTransport:
    """Records the (method, path) of each request and passes it on to the real transport."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.requests: list[tuple[str, str]] = []

    def request(self, method: str, path: str, body: Any, timeout: Any) -> Any:
        """Record the request, then send it."""
        self.requests.append((method, path))
        return self.transport.request(method, path, body, timeout)


def counted(config_text: str, controller: str) -> tuple[Provider, CountingTransport]:
    """A provider for config_text whose requests to the real daemon are recorded."""
    provider = Provider(parse_config(config_text.encode()), controller)
    counter = CountingTransport(provider.lxd._transport)
    provider.lxd._transport = counter  # type: ignore[assignment]  # same request() signature
    return provider, counter


def test_requests_without_allow_projects_are_unchanged(lxd_env: LxdEnv, controller_id: str) -> None:
    """The hot path: one GET finds (or misses) the instance, in project_name only."""
    name = f"garm-v010-{uuid.uuid4().hex[:10]}"
    plant(lxd_env.socket, "default", name, controller_id, start=True)
    base = f'unix_socket_path = "{lxd_env.socket}"\nproject_name = "default"\n'
    provider, counter = counted(base, controller_id)
    provider.get_instance(name)
    assert counter.requests[0] == ("GET", f"/1.0/instances/{name}?recursion=1&project=default")
    assert len(counter.requests) == 1

    provider, counter = counted(base, controller_id)
    provider.delete_instance("garm-nowhere")
    # A miss also asks whether LXD is still creating it (a create GARM killed; see
    # docs/reliability.md), in the one project, and whether the server is a cluster (one with a
    # member offline may still carry out a create sent there: docs/clusters-and-incus.md).
    assert counter.requests == [
        ("GET", "/1.0/instances/garm-nowhere?project=default"),
        ("GET", "/1.0/operations?recursion=1&project=default"),
        ("GET", "/1.0?project=default"),
    ]

    allow = base + '[pool_policy]\nallow_projects = ["garm-a", "default", "garm-b"]\n'
    provider, counter = counted(allow, controller_id)
    provider.get_instance(name)
    assert [path for _, path in counter.requests] == [
        f"/1.0/instances/{name}?recursion=1&project={project}"
        for project in ("default", "garm-a", "garm-b")
    ]
    provider.delete_instance(name)
    assert name not in names_in(lxd_env.socket, "default")


def test_a_missed_delete_looks_for_an_in_flight_create_in_every_allowed_project(
    lxd_env: LxdEnv, controller_id: str
) -> None:
    # Without specs the runner may be being created in any allowed project (a create GARM
    # killed, in a pool with its own project): the delete must ask each of them.
    base = f'unix_socket_path = "{lxd_env.socket}"\nproject_name = "default"\n'
    allow = base + '[pool_policy]\nallow_projects = ["garm-a", "garm-b"]\n'
    provider, counter = counted(allow, controller_id)
    provider.delete_instance("garm-nowhere")
    operations = [path for _, path in counter.requests if path.startswith("/1.0/operations")]
    assert operations == [
        f"/1.0/operations?recursion=1&project={project}"
        for project in ("default", "garm-a", "garm-b")
    ]


def test_finding_a_runner_in_another_project_leaves_the_providers_connection_alone(
    lxd_env: LxdEnv, projects: tuple[str, str], controller_id: str
) -> None:
    # The lookup hands back the connection to the runner's project; the provider's own stays
    # on the pool's project for whatever it does next (a create, a pool check).
    allowed, _ = projects
    name = f"garm-v010-{uuid.uuid4().hex[:10]}"
    plant(lxd_env.socket, allowed, name, controller_id)
    text = (
        f'unix_socket_path = "{lxd_env.socket}"\nproject_name = "default"\n'
        f'[pool_policy]\nallow_projects = ["{allowed}"]\n'
    )
    provider = Provider(parse_config(text.encode()), controller_id)
    pool_connection = provider.lxd
    assert json.loads(provider.get_instance(name))["name"] == name
    provider.delete_instance(name)
    assert provider.lxd is pool_connection
    assert name not in names_in(lxd_env.socket, allowed)
