"""What the `setup` tests share: the config they point setup at and its command line."""

from __future__ import annotations

from pathlib import Path

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
