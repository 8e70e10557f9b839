"""Operator subcommands: check and setup against the real test LXD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pylxd
from conftest import LxdEnv, run_operator
from setup_runs import lxd_object, setup_args, setup_config


def test_check_passes_on_a_working_config(provider_bin: str, provider_config: Path) -> None:
    proc = run_operator(
        provider_bin, "check", "--config", str(provider_config), "--image", "busybox"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "connected to lxd" in proc.stdout
    assert "auth: trusted" in proc.stdout
    assert "ok    profile default exists" in proc.stdout
    assert "all checks passed" in proc.stdout


def test_check_warns_when_root_disks_are_on_a_dir_pool(
    provider_bin: str, provider_config: Path, lxd_env: LxdEnv, lxd_client: pylxd.Client
) -> None:
    driver = lxd_client.storage_pools.get(lxd_env.pool).driver
    proc = run_operator(provider_bin, "check", "--config", str(provider_config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    where = f"runners' root disks are on storage pool {lxd_env.pool} (driver {driver})"
    if driver == "dir":
        assert f"WARN  {where}: LXD unpacks the whole image" in proc.stdout
    else:
        assert f"ok    {where}" in proc.stdout


def test_check_recommends_the_interface_version_and_names_the_searched_projects(
    provider_bin: str, provider_config: Path
) -> None:
    with provider_config.open("a") as config:
        config.write('[pool_policy]\nallow_projects = ["ci-a", "default", "ci-b"]\n')
    proc = run_operator(provider_bin, "check", "--config", str(provider_config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'use interface_version = "v0.1.0" in GARM' in proc.stdout
    assert "docs/interface-versions.md" in proc.stdout
    assert "runners are looked up in projects: default, ci-a, ci-b\n" in proc.stdout


def test_check_fails_on_a_missing_profile_and_image(
    provider_bin: str, provider_config: Path
) -> None:
    proc = run_operator(
        provider_bin,
        "check",
        "--config",
        str(provider_config),
        "--image",
        "no-such-image",
        "--flavor",
        "no-such-profile",
    )
    assert proc.returncode == 1
    assert "FAIL  profile" in proc.stdout
    assert "FAIL  image" in proc.stdout


def test_check_reports_an_unreachable_server(provider_bin: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'unix_socket_path = "{tmp_path}/absent.socket"\n')
    proc = run_operator(provider_bin, "check", "--config", str(config))
    assert proc.returncode == 1
    assert "FAIL  connect" in proc.stdout


def test_setup_plans_then_applies_then_has_nothing_to_do(
    provider_bin: str, lxd_env: Any, lxd_client: Any, tmp_path: Path, setup_names: dict[str, str]
) -> None:
    config = setup_config(tmp_path, lxd_env, setup_names["project"])
    args = setup_args(config, setup_names)
    plan = run_operator(provider_bin, *args)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"create project {setup_names['project']}" in plan.stdout
    assert "run again with --apply" in plan.stdout
    assert setup_names["project"] not in {p.name for p in lxd_client.projects.all()}

    applied = run_operator(provider_bin, *args, "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "4 change(s) made" in applied.stdout
    network = lxd_client.networks.get(setup_names["network"])
    assert network.config["security.acls"] == setup_names["acl"]
    assert network.config["ipv4.address"] == setup_names["subnet"]
    acl = lxd_object(lxd_client, "network-acls", setup_names["acl"])
    assert "10.0.0.0/8" in acl["egress"][0]["destination"]
    assert acl["egress"][0]["action"] == "reject"
    profile = lxd_object(lxd_client, "profiles", setup_names["profile"],
                         project=setup_names["project"])  # fmt: skip
    devices = profile["devices"]
    assert devices["eth0"]["network"] == setup_names["network"]

    again = run_operator(provider_bin, *args, "--apply")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do" in again.stdout


def test_help_lists_the_subcommands(provider_bin: str) -> None:
    proc = run_operator(provider_bin, "--help")
    assert proc.returncode == 0
    for command in ("userdata", "check", "setup"):
        assert command in proc.stdout
