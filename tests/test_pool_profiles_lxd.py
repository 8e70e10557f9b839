"""The pool policy on profiles and device overrides, against the real test LXD (real-LXD tests).

Each test makes its own profiles on the test daemon (unique names, removed afterwards) and runs
the provider as GARM does: a refused create exits 1 with one line naming the profile (or device)
and key, and leaves nothing on the server.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pylxd
import pytest
from conftest import LxdEnv, RunProvider, create_runner, delete_controller_instances, run_operator

MakeProfile = Callable[[dict[str, Any]], str]


@pytest.fixture
def make_profile(lxd_client: pylxd.Client, controller_id: str) -> Iterator[MakeProfile]:
    """Create a uniquely named profile with the given config and devices; removed afterwards."""
    made: list[str] = []

    def make(contents: dict[str, Any]) -> str:
        name = f"garm-pol-{uuid.uuid4().hex[:8]}"
        lxd_client.profiles.create(
            name, config=contents.get("config", {}), devices=contents.get("devices", {})
        )
        made.append(name)
        return name

    yield make
    delete_controller_instances(lxd_client, controller_id)  # LXD keeps a profile in use
    for name in made:
        with contextlib.suppress(pylxd.exceptions.NotFound):
            lxd_client.profiles.get(name).delete()


def _config_with(provider_config: Path, policy: str) -> Path:
    path = provider_config.with_name("policy.toml")
    path.write_text(provider_config.read_text() + f"\n[pool_policy]\n{policy}\n")
    return path


def _refused(
    proc: subprocess.CompletedProcess[bytes], client: pylxd.Client, name: str, text: str
) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert proc.stdout == b""
    assert err.count("\n") == 1, err
    assert text in err, err
    assert not client.instances.exists(name)
    return err


def _created(proc: subprocess.CompletedProcess[bytes], client: pylxd.Client, name: str) -> Any:
    assert proc.returncode == 0, proc.stderr
    return client.instances.get(name)


DANGEROUS_PROFILES = [
    ({"config": {"security.privileged": "true"}}, "config.security.privileged"),
    ({"config": {"raw.lxc": "lxc.console.size = 4096"}}, "config.raw.lxc"),
    (
        {"devices": {"host": {"type": "disk", "source": "{host_dir}", "path": "/mnt/host"}}},
        "devices.host.source",
    ),
]


def _fill(contents: dict[str, Any], host_dir: Path) -> dict[str, Any]:
    filled: dict[str, Any] = json.loads(json.dumps(contents).replace("{host_dir}", str(host_dir)))
    return filled


@pytest.mark.parametrize(
    ("contents", "where"), DANGEROUS_PROFILES, ids=[where for _, where in DANGEROUS_PROFILES]
)
def test_create_refuses_a_dangerous_profile_and_allow_profiles_lets_it(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
    make_profile: MakeProfile,
    tmp_path: Path,
    contents: dict[str, Any],
    where: str,
) -> None:
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    host_dir.chmod(0o755)
    profile = make_profile(_fill(contents, host_dir))
    specs = {"profiles": [lxd_env.profile, profile]}
    proc, name, _ = create_runner(run_provider, provider_config, controller_id, extra_specs=specs)
    err = _refused(proc, lxd_client, name, f'extra specs: profile "{profile}": {where}: ')
    assert f'(allow it with [pool_policy] allow_profiles = ["{profile}"])' in err

    allowing = _config_with(provider_config, f'allow_profiles = ["{profile}"]')
    proc, name, _ = create_runner(run_provider, allowing, controller_id, extra_specs=specs)
    assert _created(proc, lxd_client, name).profiles == [lxd_env.profile, profile]


def test_validate_pool_info_and_check_judge_the_profiles_too(
    run_provider: RunProvider,
    provider_bin: str,
    provider_config: Path,
    controller_id: str,
    make_profile: MakeProfile,
    tmp_path: Path,
) -> None:
    profile = make_profile({"config": {"limits.kernel.rtprio": "99"}})
    specs = {"profiles": [profile]}
    proc = run_provider(
        "ValidatePoolInfo", config=provider_config, controller_id=controller_id, extra_specs=specs
    )
    assert proc.returncode == 1
    assert f'profile "{profile}": config.limits.kernel.rtprio' in proc.stderr.decode()
    specs_file = tmp_path / "specs.json"
    specs_file.write_text(json.dumps(specs))
    done = run_operator(
        provider_bin, "check", "--config", str(provider_config), "--extra-specs", str(specs_file)
    )
    assert done.returncode == 1
    assert f'FAIL  pool policy: extra specs: profile "{profile}": config.limits' in done.stdout


def test_the_flavor_is_judged_and_setups_runner_profile_passes(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
    make_profile: MakeProfile,
) -> None:
    from garm_provider_lxd.admin.setup import SetupOptions, desired_objects
    from garm_provider_lxd.config import Config

    privileged = make_profile({"config": {"security.privileged": "true"}})
    proc, name, _ = create_runner(run_provider, provider_config, controller_id, flavor=privileged)
    _refused(proc, lxd_client, name, f'profile "{privileged}": config.security.privileged')

    options = SetupOptions(
        network=lxd_env.bridge,
        subnet="10.250.0.1/24",
        acl="garm-unused",
        profile="garm-unused",
        storage_pool=lxd_env.pool,
        nesting=True,
    )
    (runner,) = [obj for obj in desired_objects(Config(), options) if obj.kind == "profile"]
    profile = make_profile(runner.fields)
    proc, name, _ = create_runner(run_provider, provider_config, controller_id, flavor=profile)
    assert _created(proc, lxd_client, name).profiles == [profile]


def test_a_custom_volume_needs_allow_volumes(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
) -> None:
    volume = f"garm-pol-{uuid.uuid4().hex[:8]}"
    pool = lxd_client.storage_pools.get(lxd_env.pool)
    pool.volumes.create({"name": volume, "type": "custom", "config": {}})
    try:
        device = {"type": "disk", "pool": lxd_env.pool, "source": volume, "path": "/data"}
        specs = {"devices": {"data": device}}
        proc, name, _ = create_runner(
            run_provider, provider_config, controller_id, extra_specs=specs
        )
        err = _refused(proc, lxd_client, name, "extra specs: devices.data.source: custom volume")
        assert f'allow_volumes = ["{lxd_env.pool}/{volume}"]' in err

        allowing = _config_with(provider_config, f'allow_volumes = ["{lxd_env.pool}/garm-pol-*"]')
        proc, name, _ = create_runner(run_provider, allowing, controller_id, extra_specs=specs)
        assert _created(proc, lxd_client, name).devices["data"]["source"] == volume
    finally:
        for inst in lxd_client.instances.all(recursion=1):
            if inst.config.get("user.runner-controller-id") == controller_id:
                inst.stop(force=True, wait=True)
                inst.delete(wait=True)
        pool.volumes.get("custom", volume).delete()


def test_an_eth0_override_may_not_drop_the_profiles_filtering(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
    make_profile: MakeProfile,
) -> None:
    eth0 = {"type": "nic", "name": "eth0", "network": lxd_env.bridge}
    filters = {"security.ipv4_filtering": "true", "security.mac_filtering": "true"}
    limits = {"limits.egress": "100Mbit"}
    profile = make_profile({"devices": {"eth0": {**eth0, **filters, **limits}}})
    # The pool keeps the limit and the MAC filter, and leaves out the IPv4 filter.
    pool_eth0 = {**eth0, "security.mac_filtering": "true", "limits.egress": "10Mbit"}
    specs = {"profiles": [lxd_env.profile, profile], "devices": {"eth0": pool_eth0}}
    proc, name, _ = create_runner(run_provider, provider_config, controller_id, extra_specs=specs)
    err = _refused(proc, lxd_client, name, "extra specs: devices.eth0.security.ipv4_filtering: ")
    assert f'drops "true", the value profile "{profile}" sets on device eth0' in err


def test_a_root_override_may_shrink_the_profiles_quota_but_not_drop_it(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
    make_profile: MakeProfile,
) -> None:
    root = {"type": "disk", "path": "/", "pool": lxd_env.pool}
    profile = make_profile({"devices": {"root": {**root, "size": "3GiB"}}})
    specs = {"profiles": [lxd_env.profile, profile], "devices": {"root": root}}
    proc, name, _ = create_runner(run_provider, provider_config, controller_id, extra_specs=specs)
    _refused(proc, lxd_client, name, 'extra specs: devices.root.size: drops "3GiB", the value')

    specs["devices"] = {"root": {**root, "size": "4GiB"}}
    proc, name, _ = create_runner(run_provider, provider_config, controller_id, extra_specs=specs)
    _refused(proc, lxd_client, name, 'devices.root.size: loosens "3GiB" to "4GiB"')

    specs["devices"] = {"root": {**root, "size": "2GiB"}}
    proc, name, _ = create_runner(run_provider, provider_config, controller_id, extra_specs=specs)
    assert _created(proc, lxd_client, name).expanded_devices["root"]["size"] == "2GiB"
