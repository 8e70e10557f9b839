"""`setup --storage-driver`: a loop-backed copy-on-write pool for the runners' root disks.

Against the real test LXD. Every object a test makes has a unique name and is removed
afterwards; the daemon's own default pool and profile are only read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pylxd
import pytest
from conftest import LxdEnv, run_operator
from setup_runs import lxd_object, setup_args, setup_config

from garm_provider_lxd.admin.setup import COW_DRIVERS


def _supported(lxd_client: pylxd.Client) -> set[str]:
    drivers = lxd_client.host_info["environment"].get("storage_supported_drivers") or []
    return {str(item["Name"]) for item in drivers}


def _pools(lxd_client: pylxd.Client) -> set[str]:
    return {pool.name for pool in lxd_client.storage_pools.all()}


def _root_disk(lxd_client: pylxd.Client, setup_names: dict[str, str]) -> Any:
    profile = lxd_object(lxd_client, "profiles", setup_names["profile"],
                         project=setup_names["project"])  # fmt: skip
    return profile["devices"]["root"]


def test_apply_creates_the_pool_and_puts_the_root_disk_on_it_once(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    tmp_path: Path,
    setup_names: dict[str, str],
) -> None:
    if "btrfs" not in _supported(lxd_client):
        pytest.skip("the test LXD has no btrfs (install btrfs-progs before it starts)")
    config = setup_config(tmp_path, lxd_env, setup_names["project"])
    args = setup_args(
        config, setup_names, "--storage-pool", setup_names["pool"], "--storage-driver", "btrfs",
        "--storage-size", "2GiB",
    )  # fmt: skip

    plan = run_operator(provider_bin, *args)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert (
        f"create storage pool {setup_names['pool']} (btrfs on a loop file of 2GiB)\n" in plan.stdout
    )
    assert "run again with --apply" in plan.stdout
    assert setup_names["pool"] not in _pools(lxd_client)  # the plan changed nothing
    assert setup_names["project"] not in {p.name for p in lxd_client.projects.all()}

    applied = run_operator(provider_bin, *args, "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "5 change(s) made" in applied.stdout
    pool = lxd_client.storage_pools.get(setup_names["pool"])
    assert pool.driver == "btrfs"
    assert pool.config["size"] == "2GiB"
    assert pool.config["source"].endswith(f"/disks/{setup_names['pool']}.img")  # loop-backed
    assert _root_disk(lxd_client, setup_names) == {
        "type": "disk",
        "path": "/",
        "pool": setup_names["pool"],
    }
    assert "note " not in applied.stdout  # no dir pool involved

    again = run_operator(provider_bin, *args, "--apply")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"ok     storage pool {setup_names['pool']} is as wanted" in again.stdout
    assert "nothing to do" in again.stdout

    check = run_operator(
        provider_bin, "check", "--config", str(config), "--flavor", setup_names["profile"]
    )
    assert (
        f"ok    runners' root disks are on storage pool {setup_names['pool']} (driver btrfs)"
        in (check.stdout)
    )


def test_an_unsupported_driver_is_one_line_and_changes_nothing(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    tmp_path: Path,
    setup_names: dict[str, str],
) -> None:
    unsupported = [driver for driver in COW_DRIVERS if driver not in _supported(lxd_client)]
    if not unsupported:
        pytest.skip("the test LXD supports every copy-on-write driver")
    config = setup_config(tmp_path, lxd_env, setup_names["project"])
    args = setup_args(
        config,
        setup_names,
        "--storage-pool",
        setup_names["pool"],
        "--storage-driver",
        unsupported[0],
    )
    done = run_operator(provider_bin, *args, "--apply")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"--storage-driver {unsupported[0]}: this server does not support it" in done.stderr
    assert setup_names["pool"] not in _pools(lxd_client)
    assert setup_names["project"] not in {p.name for p in lxd_client.projects.all()}


def test_an_existing_pool_with_another_driver_is_refused_before_any_change(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    tmp_path: Path,
    setup_names: dict[str, str],
) -> None:
    # The daemon's own pool is only read: setup refuses to touch it.
    have = lxd_client.storage_pools.get(lxd_env.pool).driver
    other = [d for d in COW_DRIVERS if d != have and d in _supported(lxd_client)]
    if not other:
        pytest.skip("no supported copy-on-write driver differs from the default pool's")
    config = setup_config(tmp_path, lxd_env, setup_names["project"])
    args = setup_args(
        config, setup_names, "--storage-pool", lxd_env.pool, "--storage-driver", other[0]
    )
    done = run_operator(provider_bin, *args, "--apply")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"storage pool {lxd_env.pool} exists with driver {have}, not {other[0]}" in done.stderr
    assert setup_names["project"] not in {p.name for p in lxd_client.projects.all()}
    assert lxd_client.storage_pools.get(lxd_env.pool).driver == have


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--storage-size", "30GiB"], "--storage-size needs --storage-driver"),
        (["--storage-driver", "btrfs", "--storage-size", "30XB"], "expected a whole number"),
        (["--storage-driver", "btrfs", "--storage-size", "512MiB"], "between 1GiB and 64TiB"),
        (["--storage-driver", "btrfs", "--storage-size", "65TiB"], "between 1GiB and 64TiB"),
        (["--storage-driver", "btrfs", "--storage-size=-3GiB"], "expected a whole number"),
        (["--storage-driver", "ext4"], "invalid choice: 'ext4'"),
        (["--storage-driver", "btrfs", "--storage-pool", "../x"], "--storage-pool '../x'"),
        (["--storage-pool", "no-such-pool-for-garm"], "no such storage pool"),
    ],
)
def test_bad_storage_options_are_one_line_and_change_nothing(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    tmp_path: Path,
    setup_names: dict[str, str],
    extra: list[str],
    message: str,
) -> None:
    config = setup_config(tmp_path, lxd_env, setup_names["project"])
    if "--storage-pool" not in extra:
        extra = [*extra, "--storage-pool", setup_names["pool"]]
    done = run_operator(provider_bin, *setup_args(config, setup_names, *extra), "--apply")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert setup_names["project"] not in {p.name for p in lxd_client.projects.all()}
    assert setup_names["pool"] not in _pools(lxd_client)


def test_the_plan_proposes_a_copy_on_write_pool_when_root_disks_are_on_dir(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    tmp_path: Path,
    setup_names: dict[str, str],
) -> None:
    if lxd_client.storage_pools.get(lxd_env.pool).driver != "dir":
        pytest.skip("the test LXD's default pool is not a dir pool")
    cow = [driver for driver in COW_DRIVERS if driver in _supported(lxd_client)]
    config = setup_config(tmp_path, lxd_env, setup_names["project"])
    plan = run_operator(
        provider_bin, *setup_args(config, setup_names, "--storage-pool", lxd_env.pool)
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"note   storage pool {lxd_env.pool} (driver dir) holds the runners' root disks" in (
        plan.stdout
    )
    if cow:
        assert f"--storage-driver {cow[0]} to make one" in plan.stdout
    assert setup_names["project"] not in {p.name for p in lxd_client.projects.all()}
