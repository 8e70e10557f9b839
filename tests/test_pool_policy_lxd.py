"""The pool policy against the real test LXD: dangerous extra specs refused, allowances honoured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pylxd
import pytest
from conftest import LxdEnv, RunProvider, create_runner, socket_config

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


def _create(
    run_provider: RunProvider, config: Path, controller_id: str, specs: dict[str, Any]
) -> tuple[subprocess.CompletedProcess[bytes], str]:
    proc, name, _ = create_runner(run_provider, config, controller_id, extra_specs=specs)
    return proc, name


def _exists(client: pylxd.Client, name: str) -> bool:
    return bool(client.instances.exists(name))


def _assert_refused(proc: subprocess.CompletedProcess[bytes], path: str, entry: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert err.count("\n") == 1, err
    assert f"extra specs: {path}:" in err
    assert "pool policy" in err
    assert entry in err


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
    proc, name = _create(run_provider, provider_config, controller_id, specs)
    _assert_refused(proc, path, entry)
    assert not _exists(lxd_client, name)


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
    _assert_refused(proc, path, entry)


def test_a_pool_cannot_list_another_project(
    run_provider: RunProvider, provider_config: Path, controller_id: str
) -> None:
    proc = run_provider(
        "ListInstances",
        config=provider_config,
        controller_id=controller_id,
        extra_specs={"project": "someone-elses"},
    )
    _assert_refused(proc, "project", 'allow_projects = ["someone-elses"]')


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
    proc, name = _create(run_provider, provider_config, controller_id, specs)
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
    proc, name = _create(run_provider, config, controller_id, specs)
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
    proc, _ = _create(run_provider, _config_with(provider_config, policy), controller_id, specs)
    assert "pool policy" not in proc.stderr.decode()


def test_reserved_keys_stay_refused_whatever_the_policy(
    run_provider: RunProvider, provider_config: Path, controller_id: str
) -> None:
    config = _config_with(provider_config, 'allow_config = ["*"]')
    for key in ("volatile.uuid", "user.runner-pool-id", "cloud-init.user-data", "boot.mode"):
        proc, _ = _create(run_provider, config, controller_id, {"config": {key: "x"}})
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
    proc, name = _create(run_provider, allowing, controller_id, specs)
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
    assert not _exists(lxd_client, name)


# TCP listeners in the test daemon's network namespace, where LXD would connect to a pool's
# image_remote: one accepts and never answers, one accepts and hangs up, and a port nobody
# listens on. Prints the three ports, then "accept <port>" for every connection.
PROBE_LISTENERS = """
import socket, sys, threading
silent, closing, unused = (socket.create_server(("127.0.0.1", 0)) for _ in range(3))
ports = [s.getsockname()[1] for s in (silent, closing, unused)]
unused.close()
print(*ports, flush=True)
held = []
def serve(server, keep):
    while True:
        conn, _ = server.accept()
        print("accept", server.getsockname()[1], flush=True)
        held.append(conn) if keep else conn.close()
threading.Thread(target=serve, args=(closing, False), daemon=True).start()
serve(silent, True)
"""


class ProbeTargets:
    """The listeners' ports; accepts() stops them and returns the ports that were connected to."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.process = process
        self.silent, self.closing, self.closed = map(int, process.stdout.readline().split())

    def accepts(self) -> list[int]:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        return [int(line.split()[1]) for line in out.splitlines() if line.startswith("accept ")]


@pytest.fixture
def probe_targets(lxd_env: LxdEnv) -> Iterator[ProbeTargets]:
    """The probe listeners, started in the test daemon's network namespace."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", lxd_env.netns, sys.executable, "-c", PROBE_LISTENERS],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield ProbeTargets(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_image_remote_on_an_undeclared_host_is_refused_before_any_connection(
    run_provider: RunProvider,
    tmp_path: Path,
    lxd_env: LxdEnv,
    controller_id: str,
    lxd_client: pylxd.Client,
    probe_targets: ProbeTargets,
) -> None:
    """A pool cannot make LXD probe ports: a closed one and a silent one both fail at once with
    the policy line (old code: "connection refused", and a hang until the operation deadline).
    """
    config = socket_config(tmp_path / "probe.toml", lxd_env.socket, operation_timeout_seconds=10)
    for port in (probe_targets.closed, probe_targets.silent):
        specs = {"image_remote": {"addr": f"https://127.0.0.1:{port}/"}}
        entry = f'allow_image_hosts = ["127.0.0.1:{port}"]'
        proc, name = _create(run_provider, config, controller_id, specs)
        _assert_refused(proc, "image_remote.addr", entry)
        assert not _exists(lxd_client, name)
        proc = run_provider(
            "ValidatePoolInfo", config=config, controller_id=controller_id, extra_specs=specs
        )
        _assert_refused(proc, "image_remote.addr", entry)
    assert probe_targets.accepts() == []


def test_image_remote_on_an_allowed_or_declared_host_passes_the_policy(
    run_provider: RunProvider,
    tmp_path: Path,
    lxd_env: LxdEnv,
    controller_id: str,
    lxd_client: pylxd.Client,
    probe_targets: ProbeTargets,
) -> None:
    """Allowed by host (and port), or the addr of a declared remote: the policy lets it through,
    and LXD really connects (which also shows the listeners above would have seen a probe).
    """
    closing = f"https://127.0.0.1:{probe_targets.closing}/"
    silent = f"https://127.0.0.1:{probe_targets.silent}/"
    allowed = socket_config(
        tmp_path / "allowed.toml",
        lxd_env.socket,
        operation_timeout_seconds=10,
        pool_policy={"allow_image_hosts": [f"127.0.0.1:{probe_targets.closing}"]},
    )
    proc, name = _create(run_provider, allowed, controller_id, {"image_remote": {"addr": closing}})
    assert proc.returncode == 1, proc.stderr
    assert b"pool policy" not in proc.stderr
    assert not _exists(lxd_client, name)
    declared = socket_config(tmp_path / "declared.toml", lxd_env.socket)
    declared.write_text(declared.read_text() + f'[image_remotes.probe]\naddr = "{silent}"\n')
    for config, addr in ((allowed, closing), (declared, silent)):
        proc = run_provider(
            "ValidatePoolInfo",
            config=config,
            controller_id=controller_id,
            extra_specs={"image_remote": {"addr": addr}},
        )
        assert proc.returncode == 0, proc.stderr
    assert probe_targets.closing in probe_targets.accepts()


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
