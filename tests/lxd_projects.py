"""Projects and planted instances on a test daemon, for tests that span several projects."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pylxd
from conftest import CONTROLLER_ID_KEY, socket_config


def make_project(client: pylxd.Client, prefix: str) -> str:
    """Create a project sharing the default project's images and profiles; return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client.api.projects.post(
        json={"name": name, "config": {"features.images": "false", "features.profiles": "false"}}
    )
    return name


def drop_project(endpoint: str, name: str) -> None:
    """Force-delete every instance in project name, then the project."""
    client = pylxd.Client(endpoint=endpoint, project=name)
    for instance in client.instances.all(recursion=1):
        with contextlib.suppress(pylxd.exceptions.NotFound):
            if instance.status != "Stopped":
                instance.stop(force=True, wait=True)
            instance.delete(wait=True)
    client.api.projects[name].delete()


def names_in(endpoint: str, project: str) -> set[str]:
    """Names of the instances in project."""
    client = pylxd.Client(endpoint=endpoint, project=project)
    return {i.name for i in client.instances.all(recursion=1)}


def status_in(endpoint: str, project: str, name: str) -> str:
    """Status of instance name in project."""
    return str(pylxd.Client(endpoint=endpoint, project=project).instances.get(name).status)


def plant(
    endpoint: str, project: str, name: str, controller: str, *, start: bool = False, arch: str = ""
) -> None:
    """Create a GARM-tagged instance directly in project, as if a pool had made it there."""
    client = pylxd.Client(endpoint=endpoint, project=project)
    config = {CONTROLLER_ID_KEY: controller, "user.runner-pool-id": str(uuid.uuid4())}
    if arch:
        config["user.os-arch"] = arch
    body = {"name": name, "source": {"type": "image", "alias": "busybox"}, "config": config}
    instance = client.instances.create(body, wait=True)
    if start:
        instance.start(wait=True)


def allowing_config(path: Path, socket: str, allow: list[str]) -> Path:
    """A provider config in the default project that allows the given extra projects."""
    return socket_config(path, socket, pool_policy={"allow_projects": allow})
