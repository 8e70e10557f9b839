"""The test LXD environment from tests/env/lxd-up.sh is complete and stable; fixtures behave."""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pylxd
from conftest import CONTROLLER_ID_KEY, LXD_UP, TEST_IMAGE, LxdEnv, make_runner

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

BRIDGE_SUBNET = ipaddress.ip_network("10.161.0.0/24")
# Generous bound on waiting for DHCP; it normally takes 1-3 s.
ADDRESS_DEADLINE = 60.0


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, to talk to LXD without pylxd."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.unix_path = path

    def connect(self) -> None:
        """Connect to the unix socket instead of TCP."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.unix_path)
        self.sock = sock


def cgroup_hierarchies(mountinfo: Path) -> set[tuple[str, str, str]]:
    """Return (mount point, fs type, device) of the cgroup mounts in a mountinfo file.

    The device identifies a cgroup hierarchy; it is "-" for the tmpfs that holds them.
    """
    mounts = set()
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        mountpoint = fields[4]
        if mountpoint == "/sys/fs/cgroup" or mountpoint.startswith("/sys/fs/cgroup/"):
            device = fields[2] if fstype.startswith("cgroup") else "-"
            mounts.add((mountpoint, fstype, device))
    return mounts


def server_pid(client: pylxd.Client) -> int:
    """Return the pid of the LXD daemon behind the client."""
    return int(client.host_info["environment"]["server_pid"])


def server_snapshot(client: pylxd.Client, env: LxdEnv) -> dict[str, Any]:
    """Return the parts of the server state that lxd-up.sh manages."""
    alias = client.images.get_by_alias(env.image)
    return {
        "pid": server_pid(client),
        "networks": sorted(n.name for n in client.networks.all()),
        "bridge": client.networks.get(env.bridge).config,
        "pools": sorted(p.name for p in client.storage_pools.all()),
        "profiles": sorted(p.name for p in client.profiles.all()),
        "profile": client.profiles.get(env.profile).devices,
        "images": sorted(i.fingerprint for i in client.images.all()),
        "image": (alias.fingerprint, alias.uploaded_at),
    }


def test_socket_answers_get_1_0(lxd_env: LxdEnv) -> None:
    conn = UnixHTTPConnection(lxd_env.socket)
    conn.request("GET", "/1.0")
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 200
    assert body["metadata"]["api_version"] == "1.0"
    assert body["metadata"]["auth"] == "trusted"


def test_socket_lives_in_the_state_dir(lxd_env: LxdEnv) -> None:
    assert lxd_env.socket == os.path.join(lxd_env.lxd_dir, "unix.socket")
    assert lxd_env.image == TEST_IMAGE


def test_daemon_runs_in_its_network_namespace(lxd_env: LxdEnv, lxd_client: pylxd.Client) -> None:
    daemon_netns = os.stat(f"/proc/{server_pid(lxd_client)}/ns/net").st_ino
    assert daemon_netns == os.stat(f"/run/netns/{lxd_env.netns}").st_ino
    assert daemon_netns != os.stat("/proc/self/ns/net").st_ino


def test_daemon_sees_the_host_cgroup_layout(lxd_client: pylxd.Client) -> None:
    host = cgroup_hierarchies(Path("/proc/self/mountinfo"))
    daemon = cgroup_hierarchies(Path(f"/proc/{server_pid(lxd_client)}/mountinfo"))
    assert host, "the host has no cgroup mounts under /sys/fs/cgroup"
    assert host <= daemon


def test_bridge_is_managed_and_private(lxd_env: LxdEnv, lxd_client: pylxd.Client) -> None:
    network = lxd_client.networks.get(lxd_env.bridge)
    assert network.managed
    assert network.type == "bridge"
    assert network.config["ipv4.address"] == "10.161.0.1/24"
    assert network.config["ipv4.nat"] == "false"
    assert network.config["ipv6.address"] == "none"


def test_pool_and_profile(lxd_env: LxdEnv, lxd_client: pylxd.Client) -> None:
    assert lxd_client.storage_pools.get(lxd_env.pool).driver == "dir"
    devices = lxd_client.profiles.get(lxd_env.profile).devices
    assert devices["root"] == {"path": "/", "pool": lxd_env.pool, "type": "disk"}
    assert devices["eth0"] == {"name": "eth0", "network": lxd_env.bridge, "type": "nic"}


def test_image_alias_points_at_the_busybox_image(lxd_env: LxdEnv, lxd_client: pylxd.Client) -> None:
    image = lxd_client.images.get_by_alias(lxd_env.image)
    assert image.architecture == "x86_64"
    assert image.properties["os"] == "busybox"
    assert image.properties["release"] == "1.35"
    assert image.size < 4 * 1024 * 1024


def wait_for_ipv4(instance: Any) -> ipaddress.IPv4Address | None:
    """Return the instance's global IPv4 on eth0 once it has one, or None at the deadline."""
    deadline = time.monotonic() + ADDRESS_DEADLINE
    while time.monotonic() < deadline:
        network = instance.state().network or {}
        for address in network.get("eth0", {}).get("addresses", []):
            if address["family"] == "inet" and address["scope"] == "global":
                return ipaddress.IPv4Address(address["address"])
        time.sleep(0.1)
    return None


def test_container_from_image_boots_and_gets_ipv4(
    lxd_env: LxdEnv, lxd_client: pylxd.Client, controller_id: str
) -> None:
    name = f"env-test-{uuid.uuid4().hex[:8]}"
    instance = lxd_client.instances.create(
        {
            "name": name,
            "source": {"type": "image", "alias": lxd_env.image},
            "profiles": [lxd_env.profile],
            "config": {CONTROLLER_ID_KEY: controller_id},
        },
        wait=True,
    )
    try:
        instance.start(wait=True)
        address = wait_for_ipv4(instance)
        assert address is not None, f"{name} got no IPv4 on eth0"
        assert address in BRIDGE_SUBNET
    finally:
        instance.stop(force=True, wait=True)
        instance.delete(wait=True)
    assert not lxd_client.instances.exists(name)


def test_lxd_up_again_succeeds_and_changes_nothing(
    lxd_env: LxdEnv, lxd_client: pylxd.Client
) -> None:
    before = server_snapshot(lxd_client, lxd_env)
    env = {k: v for k, v in os.environ.items() if k != "GARM_TEST_LXD_SELFTEST"}
    done = subprocess.run(
        ["bash", str(LXD_UP)], capture_output=True, stdin=subprocess.DEVNULL, env=env, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.decode().splitlines()[-1] == f"LXD_SOCKET={lxd_env.socket}"
    assert done.stderr == b"", "a second run reported changes"
    assert server_snapshot(lxd_client, lxd_env) == before


# /proc/self/environ is the environment as exec'd: Python's own C-locale coercion (which adds
# LC_CTYPE to os.environ at start-up) does not show there.
ENV_DUMPER = """#!{python}
import json, sys
env = dict(v.split("=", 1) for v in open("/proc/self/environ").read().split("\\0") if v)
json.dump({{"env": env, "stdin": sys.stdin.read()}}, sys.stdout)
"""


def test_run_provider_passes_only_garm_variables(tmp_path: Path) -> None:
    dumper = tmp_path / "dump-env"
    dumper.write_text(ENV_DUMPER.format(python=sys.executable))
    dumper.chmod(0o755)
    run = make_runner(str(dumper))
    config = tmp_path / "config.toml"

    done = run(
        "CreateInstance",
        config=config,
        controller_id="c1",
        pool_id="p1",
        extra_specs={"a": 1},
        stdin=b'{"name":"x"}',
        extra_env={"HTTP_PROXY": "http://proxy:3128"},
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["stdin"] == '{"name":"x"}'
    assert seen["env"] == {
        "GARM_COMMAND": "CreateInstance",
        "GARM_CONTROLLER_ID": "c1",
        "GARM_POOL_ID": "p1",
        "GARM_INSTANCE_ID": "",
        "GARM_PROVIDER_CONFIG_FILE": str(config),
        "GARM_INTERFACE_VERSION": "v0.1.1",
        "GARM_POOL_EXTRASPECS": base64.b64encode(b'{"a":1}').decode(),
        "HTTP_PROXY": "http://proxy:3128",
    }

    done = run("ListInstances", config=config, controller_id="c1")
    assert json.loads(done.stdout)["env"]["GARM_POOL_EXTRASPECS"] == "bnVsbA=="

    done = run("GetVersion", config=config, controller_id="c1", interface_version="v0.1.0")
    assert "GARM_POOL_EXTRASPECS" not in json.loads(done.stdout)["env"]


def test_bootstrap_targets_the_test_image(bootstrap: Callable[..., dict[str, Any]]) -> None:
    first = bootstrap("garm-a", flavor="other")
    second = bootstrap("garm-b", pool_id="pool-1")
    assert (first["name"], first["image"], first["flavor"]) == ("garm-a", TEST_IMAGE, "other")
    assert (first["os_type"], first["arch"]) == ("linux", "amd64")
    assert second["pool_id"] == "pool-1"
    assert first["pool_id"] != second["pool_id"]
    assert first["tools"] and first["instance-token"]
    first["tools"].clear()
    assert bootstrap("garm-c")["tools"], "payloads must not share nested objects"


def test_provider_config_points_at_the_test_socket(provider_config: Path, lxd_env: LxdEnv) -> None:
    config = tomllib.loads(provider_config.read_text())
    assert config == {
        "unix_socket_path": lxd_env.socket,
        "include_default_profile": False,
        "instance_type": "container",
        "project_name": "default",
    }
