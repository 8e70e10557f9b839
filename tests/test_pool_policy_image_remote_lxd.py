"""A pool's image_remote cannot make LXD probe the host's network, on the real LXD.

Listeners in the test daemon's network namespace see whether LXD connected: an undeclared host
is refused before any connection; an allowed or declared one reaches LXD as before.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pylxd
import pytest
from conftest import LxdEnv, RunProvider, socket_config
from pool_policy_runs import assert_refused, create_with_specs, instance_exists

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
        proc, name = create_with_specs(run_provider, config, controller_id, specs)
        assert_refused(proc, "image_remote.addr", entry)
        assert not instance_exists(lxd_client, name)
        proc = run_provider(
            "ValidatePoolInfo", config=config, controller_id=controller_id, extra_specs=specs
        )
        assert_refused(proc, "image_remote.addr", entry)
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
    proc, name = create_with_specs(
        run_provider, allowed, controller_id, {"image_remote": {"addr": closing}}
    )
    assert proc.returncode == 1, proc.stderr
    assert b"pool policy" not in proc.stderr
    assert not instance_exists(lxd_client, name)
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
