"""The pool policy against the real test LXD: dangerous extra specs refused, allowances honoured."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pylxd
import pytest
from conftest import LxdEnv, RunProvider
from pool_policy_runs import assert_refused, create_with_specs, instance_exists

# A pongo2 template LXD would evaluate in its own daemon (snapshots.pattern).
NESTED_LOOPS = "{% for a in x %}{% for b in x %}{% endfor %}{% endfor %}"
# (extra specs, the path the refusal names, the [pool_policy] entry that would allow it)
DANGEROUS: list[tuple[dict[str, Any], str, str]] = [
    (
        {"config": {"security.privileged": "true"}},
        "config.security.privileged",
        'allow_config = ["security.privileged"]',
    ),
    (
        {"config": {"raw.lxc": "lxc.apparmor.profile=unconfined"}},
        "config.raw.lxc",
        'allow_config = ["raw.lxc"]',
    ),
    ({"config": {"raw.idmap": "both 0 0"}}, "config.raw.idmap", 'allow_config = ["raw.idmap"]'),
    (
        {"config": {"raw.apparmor": "mount,"}},
        "config.raw.apparmor",
        'allow_config = ["raw.apparmor"]',
    ),
    (
        {"config": {"raw.seccomp": "2\\nallowlist\\n"}},
        "config.raw.seccomp",
        'allow_config = ["raw.seccomp"]',
    ),
    (
        {"config": {"linux.kernel_modules": "nbd"}},
        "config.linux.kernel_modules",
        'allow_config = ["linux.kernel_modules"]',
    ),
    (
        {"config": {"linux.sysctl.net.ipv4.ip_forward": "1"}},
        "config.linux.sysctl.net.ipv4.ip_forward",
        "allow_config",
    ),
    (
        {"config": {"security.idmap.isolated": "false"}},
        "config.security.idmap.isolated",
        "allow_config",
    ),
    (
        {"config": {"security.devlxd.images": "true"}},
        "config.security.devlxd.images",
        "allow_config",
    ),
    (
        {"config": {"security.syscalls.intercept.mount": "true"}},
        "config.security.syscalls.intercept.mount",
        "allow_config",
    ),
    (
        {"config": {"security.syscalls.deny_default": "false"}},
        "config.security.syscalls.deny_default",
        "allow_config",
    ),
    ({"config": {"nvidia.runtime": "true"}}, "config.nvidia.runtime", "allow_config"),
    (
        {"config": {"security.protection.delete": "true"}},
        "config.security.protection.delete",
        "allow_config",
    ),
    (
        {"config": {"Security.Privileged": "true"}},
        "config.Security.Privileged",
        'allow_config = ["Security.Privileged"]',
    ),
    (
        {"config": {" raw.lxc": "lxc.apparmor.profile=unconfined"}},
        "config.' raw.lxc'",
        "allow_config",
    ),
    (
        {"devices": {"host": {"type": "disk", "source": "/", "path": "/mnt/host"}}},
        "devices.host.source",
        'allow_device_types = ["disk"]',
    ),
    (
        {
            "devices": {
                "d": {
                    "type": "disk",
                    "pool": "default",
                    "path": "/",
                    "raw.mount.options": "suid,dev",
                }
            }
        },
        "devices.d.raw.mount.options",
        'allow_device_types = ["disk"]',
    ),
    (
        {
            "devices": {
                "sock": {
                    "type": "proxy",
                    "listen": "unix:/lxd.sock",
                    "bind": "instance",
                    "connect": "unix:/var/snap/lxd/common/lxd/unix.socket",
                }
            }
        },
        "devices.sock",
        'allow_device_types = ["proxy"]',
    ),
    (
        {"devices": {"kmsg": {"type": "unix-char", "source": "/dev/kmsg"}}},
        "devices.kmsg",
        'allow_device_types = ["unix-char"]',
    ),
    (
        {"devices": {"sda": {"type": "unix-block", "source": "/dev/sda"}}},
        "devices.sda",
        'allow_device_types = ["unix-block"]',
    ),
    (
        {"devices": {"h": {"type": "unix-hotplug", "vendorid": "0781"}}},
        "devices.h",
        'allow_device_types = ["unix-hotplug"]',
    ),
    ({"devices": {"u": {"type": "usb"}}}, "devices.u", 'allow_device_types = ["usb"]'),
    ({"devices": {"g": {"type": "gpu"}}}, "devices.g", 'allow_device_types = ["gpu"]'),
    (
        {"devices": {"p": {"type": "pci", "address": "0000:00:1f.0"}}},
        "devices.p",
        'allow_device_types = ["pci"]',
    ),
    (
        {"devices": {"ib": {"type": "infiniband", "nictype": "physical", "parent": "ib0"}}},
        "devices.ib",
        'allow_device_types = ["infiniband"]',
    ),
    (
        {"devices": {"t": {"type": "tpm", "path": "/dev/tpm0"}}},
        "devices.t",
        'allow_device_types = ["tpm"]',
    ),
    (
        {"devices": {"x": {"type": "future-thing"}}},
        "devices.x",
        'allow_device_types = ["future-thing"]',
    ),
    (
        {"devices": {"eth1": {"type": "nic", "nictype": "macvlan", "parent": "eth0"}}},
        "devices.eth1",
        'allow_device_types = ["nic"]',
    ),
    (
        {"config": {"snapshots.pattern": NESTED_LOOPS}},
        "config.snapshots.pattern",
        'allow_config = ["snapshots.pattern"]',
    ),
    (
        {"config": {"snapshots.schedule": "* * * * *"}},
        "config.snapshots.schedule",
        'allow_config = ["snapshots.schedule"]',
    ),
    (
        {"config": {"limits.kernel.rtprio": "99"}},
        "config.limits.kernel.rtprio",
        'allow_config = ["limits.kernel.rtprio"]',
    ),
    (
        {"config": {"limits.cpu.allowance": "1000%"}},
        "config.limits.cpu.allowance",
        'allow_config = ["limits.cpu.allowance"]',
    ),
    (
        {"config": {"boot.host_shutdown_timeout": "86400"}},
        "config.boot.host_shutdown_timeout",
        'allow_config = ["boot.host_shutdown_timeout"]',
    ),
    (
        {"devices": {"d": {"type": "disk", "pool": "default", "source": "v", "path": "/v"}}},
        "devices.d.source",
        'allow_volumes = ["default/v"]',
    ),
    (
        {
            "devices": {
                "d": {
                    "type": "disk",
                    "pool": "default",
                    "source": "other-runner",
                    "source.type": "virtual-machine",
                    "path": "/v",
                }
            }
        },
        "devices.d.source.type",
        'allow_device_types = ["disk"]',
    ),
    ({"project": "someone-elses"}, "project", 'allow_projects = ["someone-elses"]'),
    ({"image_remote": {"addr": "http://images.example"}}, "image_remote.addr", "[image_remotes]"),
]


def _ids(cases: list[tuple[dict[str, Any], str, str]]) -> list[str]:
    return [path for _, path, _ in cases]


def _config_with(provider_config: Path, policy: str) -> Path:
    path = provider_config.with_name("policy.toml")
    path.write_text(provider_config.read_text() + f"\n[pool_policy]\n{policy}\n")
    return path


@pytest.mark.parametrize(("specs", "path", "entry"), DANGEROUS, ids=_ids(DANGEROUS))
def test_create_refuses_dangerous_specs_and_creates_nothing(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    lxd_client: pylxd.Client,
    specs: dict[str, Any],
    path: str,
    entry: str,
) -> None:
    proc, name = create_with_specs(run_provider, provider_config, controller_id, specs)
    assert_refused(proc, path, entry)
    assert not instance_exists(lxd_client, name)


@pytest.mark.parametrize(("specs", "path", "entry"), DANGEROUS, ids=_ids(DANGEROUS))
def test_validate_pool_info_refuses_the_same(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    specs: dict[str, Any],
    path: str,
    entry: str,
) -> None:
    proc = run_provider(
        "ValidatePoolInfo", config=provider_config, controller_id=controller_id, extra_specs=specs
    )
    assert_refused(proc, path, entry)


def test_a_pool_cannot_list_another_project(
    run_provider: RunProvider, provider_config: Path, controller_id: str
) -> None:
    proc = run_provider(
        "ListInstances",
        config=provider_config,
        controller_id=controller_id,
        extra_specs={"project": "someone-elses"},
    )
    assert_refused(proc, "project", 'allow_projects = ["someone-elses"]')


def test_harmless_specs_still_work(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
) -> None:
    specs = {
        "profiles": [lxd_env.profile],
        "config": {
            "limits.cpu": "1",
            "limits.memory": "256MiB",
            "security.nesting": "true",
            "security.syscalls.intercept.mknod": "true",
            "user.team": "ci",
            "environment.GREETING": "hello",
            "boot.autostart": "false",
            "limits.cpu.allowance": "50%",
            "limits.processes": "500",
        },
        "devices": {
            "root": {"type": "disk", "path": "/", "pool": lxd_env.pool, "size": "2GiB"},
            "eth0": {"type": "nic", "network": lxd_env.bridge, "name": "eth0"},
        },
        "project": "default",
    }
    proc, name = create_with_specs(run_provider, provider_config, controller_id, specs)
    assert proc.returncode == 0, proc.stderr
    inst = lxd_client.instances.get(name)
    assert inst.config["security.nesting"] == "true"
    assert inst.config["limits.memory"] == "256MiB"
    assert inst.devices["root"]["size"] == "2GiB"
    assert inst.devices["eth0"]["network"] == lxd_env.bridge


def test_allowed_specs_are_created(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    lxd_client: pylxd.Client,
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    config = _config_with(
        provider_config,
        'allow_config = ["security.privileged", "raw.lxc"]\n'
        'allow_device_types = ["unix-char", "disk"]',
    )
    specs = {
        "config": {"security.privileged": "true", "raw.lxc": "lxc.console.size = 4096"},
        "devices": {
            "null": {"type": "unix-char", "source": "/dev/null", "path": "/dev/garm-null"},
            "shared": {"type": "disk", "source": str(shared), "path": "/mnt/shared"},
        },
    }
    proc, name = create_with_specs(run_provider, config, controller_id, specs)
    assert proc.returncode == 0, proc.stderr
    inst = lxd_client.instances.get(name)
    assert inst.config["security.privileged"] == "true"
    assert inst.config["raw.lxc"] == "lxc.console.size = 4096"
    assert inst.devices["null"]["source"] == "/dev/null"
    assert inst.devices["shared"]["source"] == str(shared)
    assert inst.status == "Running"


@pytest.mark.parametrize(
    ("policy", "specs"),
    [
        ('allow_config = ["raw.*"]', {"config": {"raw.apparmor": "deny /garm-none r,"}}),
        ('allow_config = ["linux.kernel_modules"]', {"config": {"linux.kernel_modules": "nbd"}}),
        (
            'allow_device_types = ["proxy"]',
            {
                "devices": {
                    "p": {
                        "type": "proxy",
                        "listen": "tcp:127.0.0.1:1",
                        "bind": "instance",
                        "connect": "tcp:127.0.0.1:2",
                    }
                }
            },
        ),
        ('allow_device_types = ["gpu"]', {"devices": {"g": {"type": "gpu", "id": "999"}}}),
        ('allow_projects = ["garm-no-such-project"]', {"project": "garm-no-such-project"}),
        ('allow_device_types = ["nic"]', {"devices": {"e": {"type": "nic", "nictype": "p2p"}}}),
    ],
)
def test_allowed_specs_reach_lxd(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    policy: str,
    specs: dict[str, Any],
) -> None:
    # What this server can or cannot do with them is LXD's business: the policy lets them by.
    proc, _ = create_with_specs(
        run_provider, _config_with(provider_config, policy), controller_id, specs
    )
    assert "pool policy" not in proc.stderr.decode()


def test_reserved_keys_stay_refused_whatever_the_policy(
    run_provider: RunProvider, provider_config: Path, controller_id: str
) -> None:
    config = _config_with(provider_config, 'allow_config = ["*"]')
    for key in ("volatile.uuid", "user.runner-pool-id", "cloud-init.user-data", "boot.mode"):
        proc, _ = create_with_specs(run_provider, config, controller_id, {"config": {key: "x"}})
        assert proc.returncode == 1
        assert "set by the provider or LXD" in proc.stderr.decode()


def test_validate_pool_info_accepts_what_the_policy_allows(
    run_provider: RunProvider, provider_config: Path, controller_id: str
) -> None:
    config = _config_with(provider_config, 'allow_config = ["security.privileged"]')
    proc = run_provider(
        "ValidatePoolInfo",
        config=config,
        controller_id=controller_id,
        extra_specs={"config": {"security.privileged": "true"}},
    )
    assert proc.returncode == 0, proc.stderr


def _check(provider_bin: str, config: Path, specs_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [provider_bin, "check", "--config", str(config), "--extra-specs", str(specs_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_reports_the_policy_refusal(
    provider_bin: str, provider_config: Path, tmp_path: Path
) -> None:
    specs_file = tmp_path / "specs.json"
    specs_file.write_text(json.dumps({"devices": {"kmsg": {"type": "unix-char"}}}))
    proc = _check(provider_bin, provider_config, specs_file)
    assert proc.returncode == 1
    assert "FAIL  pool policy: extra specs: devices.kmsg:" in proc.stdout
    assert 'allow_device_types = ["unix-char"]' in proc.stdout
    allowing = _config_with(provider_config, 'allow_device_types = ["unix-char"]')
    proc = _check(provider_bin, allowing, specs_file)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok    the extra specs and the profiles they choose are allowed" in proc.stdout


def test_check_refuses_an_unreadable_specs_file(provider_bin: str, provider_config: Path) -> None:
    proc = _check(provider_bin, provider_config, provider_config.with_name("missing.json"))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "extra specs" in proc.stderr and "missing.json: cannot read" in proc.stderr


def test_check_refuses_a_specs_fifo_at_once(
    provider_bin: str, provider_config: Path, tmp_path: Path
) -> None:
    # A FIFO with no writer would block a plain open() for good.
    fifo = tmp_path / "specs.fifo"
    os.mkfifo(fifo)
    proc = _check(provider_bin, provider_config, fifo)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert f"extra specs {fifo}: cannot read: a FIFO, not a regular file" in proc.stderr


def test_runners_of_a_pool_the_policy_now_refuses_can_still_be_deleted(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    lxd_client: pylxd.Client,
) -> None:
    # Created while the operator allowed the key; then the allowance is withdrawn. GARM passes
    # the pool's specs to Delete (v0.1.1): the runner must still go, or it is lost for good.
    specs = {"config": {"security.privileged": "false"}}
    allowing = _config_with(provider_config, 'allow_config = ["security.privileged"]')
    proc, name = create_with_specs(run_provider, allowing, controller_id, specs)
    assert proc.returncode == 0, proc.stderr
    for command in ("StopInstance", "StartInstance", "GetInstance"):
        done = run_provider(
            command,
            config=provider_config,
            controller_id=controller_id,
            instance_id=name,
            extra_specs=specs,
        )
        assert done.returncode == 0, (command, done.stderr)
    proc = run_provider(
        "DeleteInstance",
        config=provider_config,
        controller_id=controller_id,
        instance_id=name,
        extra_specs=specs,
    )
    assert proc.returncode == 0, proc.stderr
    assert not instance_exists(lxd_client, name)


def test_check_shows_allowed_image_hosts_and_the_image_remote_verdict(
    provider_bin: str, provider_config: Path, tmp_path: Path
) -> None:
    specs_file = tmp_path / "specs.json"
    specs_file.write_text(json.dumps({"image_remote": {"addr": "https://mirror.example:8443/"}}))
    proc = _check(provider_bin, provider_config, specs_file)
    assert proc.returncode == 1
    assert "FAIL  pool policy: extra specs: image_remote.addr: host mirror.example:8443" in (
        proc.stdout
    )
    allowing = _config_with(provider_config, 'allow_image_hosts = ["mirror.example:*"]')
    proc = _check(provider_bin, allowing, specs_file)
    assert "pool policy: allow_image_hosts = ['mirror.example:*']" in proc.stdout
    assert "ok    the extra specs and the profiles they choose are allowed by the pool policy" in (
        proc.stdout
    )
