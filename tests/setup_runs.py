"""What the `setup` tests share: the config they point setup at, its command line, and reading
back the objects it made."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pylxd
import pytest
from conftest import LxdEnv


def setup_config(tmp_path: Path, lxd_env: LxdEnv, project: str) -> Path:
    """A provider config for the test daemon with runners in project."""
    config = tmp_path / "c.toml"
    config.write_text(f'unix_socket_path = "{lxd_env.socket}"\nproject_name = "{project}"\n')
    return config


def setup_args(config: Path, names: dict[str, str], *extra: str) -> list[str]:
    """`setup` with the test's own names (setup_names), then extra arguments."""
    return [
        "setup", "--config", str(config), "--network", names["network"],
        "--subnet", names["subnet"], "--acl", names["acl"], "--profile", names["profile"], *extra,
    ]  # fmt: skip


def lxd_object(lxd_client: pylxd.Client, *path: str, project: str = "") -> Any:
    """The metadata of /1.0/<path...> (a network, ACL, profile, ...) without its used_by list."""
    node = lxd_client.api
    for segment in path:
        node = node[segment]
    params = {"project": project} if project else {}
    for _ in range(5):
        try:
            metadata = dict(node.get(params=params).json()["metadata"])
            break
        except pylxd.exceptions.NotFound as exc:
            # LXD 5.0.2: a network deleted by another test while it computes an ACL's users.
            if "usage" not in str(exc):
                raise
            time.sleep(0.2)
    else:
        pytest.fail(f"{path}: LXD kept failing to compute its usage")
    metadata.pop("used_by", None)  # which instances use it: not the object's settings
    return metadata
