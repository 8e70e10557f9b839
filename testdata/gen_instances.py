"""Generate a synthetic `GET /1.0/instances?recursion=1|2` response with N instances.

Deterministic for a given N, recursion and seed. Instances mix two GARM controllers, several
pools and untagged (non-GARM) instances; every tenth one is running with addresses. Shapes
follow LXD 5.0 (see testdata/lxd/ for captured bodies).

    python testdata/gen_instances.py 1000 > instances.json
    python testdata/gen_instances.py 1000 --recursion 1 -o instances-r1.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Any

CONTROLLER_A = "2f5e8a1c-0000-4000-8000-00000000000a"
CONTROLLER_B = "2f5e8a1c-0000-4000-8000-00000000000b"
CONTROLLERS = (CONTROLLER_A, CONTROLLER_B)
POOLS = {
    CONTROLLER_A: [f"7d0c3b9e-0000-4000-8000-0000000000a{i}" for i in range(3)],
    CONTROLLER_B: [f"7d0c3b9e-0000-4000-8000-0000000000b{i}" for i in range(2)],
}
# (image.os, image.release, user.os-type or None)
IMAGES = [
    ("ubuntu", "jammy", None),
    ("Ubuntu", "noble", "linux"),
    ("debian", "bookworm", None),
    ("busybox", "1.35", None),
    ("Windows", "2022", "windows"),
    ("centos", "9-Stream", None),
    ("plan9", "4", "linux"),
    ("", "", None),
]
ARCHES = ["x86_64"] * 6 + ["aarch64", "armv7l", "riscv64"]
STOPPED_STATUSES = ["Stopped"] * 45 + ["Error", "Frozen", "Starting"]


def _tags(rng: random.Random) -> dict[str, str]:
    roll = rng.random()
    if roll < 0.1:
        return {}
    controller = CONTROLLER_A if roll < 0.8 else CONTROLLER_B
    return {
        "user.runner-controller-id": controller,
        "user.runner-pool-id": rng.choice(POOLS[controller]),
    }


def _network(i: int, rng: random.Random) -> dict[str, Any]:
    def nic(addresses: list[dict[str, str]], kind: str) -> dict[str, Any]:
        return {
            "addresses": addresses,
            "counters": {
                "bytes_received": rng.randrange(10**6),
                "bytes_sent": rng.randrange(10**6),
            },
            "hwaddr": f"00:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
            "host_name": f"veth{i:08x}",
            "mtu": 1500,
            "state": "up",
            "type": kind,
        }

    def addr(family: str, address: str, netmask: str, scope: str) -> dict[str, str]:
        return {"family": family, "address": address, "netmask": netmask, "scope": scope}

    eth0 = [
        addr("inet", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "24", "global"),
        addr("inet6", f"fd42:1::{i:x}", "64", "global"),
        addr("inet6", f"fe80::216:3eff:fe00:{i & 0xFFFF:x}", "64", "link"),
    ]
    if i % 20 == 0:
        eth0.reverse()  # LXD keeps the kernel's order, which need not put IPv4 first
    lo = [addr("inet", "127.0.0.1", "8", "local"), addr("inet6", "::1", "128", "local")]
    return {"eth0": nic(eth0, "broadcast"), "lo": nic(lo, "loopback")}


def _state(i: int, status: str, code: int, rng: random.Random) -> dict[str, Any]:
    running = status == "Running"
    return {
        "status": status,
        "status_code": code,
        "disk": {"root": {"usage": rng.randrange(10**8)}} if running else {},
        "memory": {"usage": rng.randrange(10**8) if running else 0, "usage_peak": 0},
        "network": _network(i, rng) if running else None,
        "pid": 1000 + i if running else 0,
        "processes": rng.randrange(1, 50) if running else 0,
        "cpu": {"usage": rng.randrange(10**9) if running else 0},
    }


def instance(i: int, rng: random.Random, recursion: int) -> dict[str, Any]:
    """One instance as LXD renders it in a recursion=1 (or 2, with state) listing."""
    running = i % 10 == 0
    status = "Running" if running else rng.choice(STOPPED_STATUSES)
    code = {"Running": 103, "Stopped": 102, "Error": 112, "Frozen": 110}.get(status, 106)
    image_os, release, os_type = rng.choice(IMAGES)
    config = {
        "image.architecture": "amd64",
        "image.description": f"{image_os} {release}",
        "volatile.base_image": f"{rng.getrandbits(256):064x}",
        "volatile.eth0.hwaddr": f"00:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
        "volatile.uuid": f"{rng.getrandbits(128):032x}",
        **_tags(rng),
    }
    if image_os:
        config["image.os"] = image_os
        config["image.release"] = release
    if os_type:
        config["user.os-type"] = os_type
    if rng.random() < 0.3:
        config["user.os-arch"] = rng.choice(["amd64", "arm64"])
    item: dict[str, Any] = {
        "architecture": rng.choice(ARCHES),
        "config": config,
        "devices": {},
        "ephemeral": False,
        "profiles": ["default"],
        "stateful": False,
        "description": "",
        "created_at": "2026-11-29T12:00:00Z",
        "expanded_config": dict(config),
        "expanded_devices": {
            "eth0": {"name": "eth0", "network": "lxdbr0", "type": "nic"},
            "root": {"path": "/", "pool": "default", "type": "disk"},
        },
        "name": f"garm-{i:06d}",
        "status": status,
        "status_code": code,
        "last_used_at": "2026-11-29T12:00:01Z",
        "location": "none",
        "type": "container",
        "project": "default",
    }
    if recursion >= 2:
        item["backups"] = None
        item["state"] = _state(i, status, code, rng)
        item["snapshots"] = None
    return item


def generate(n: int, *, recursion: int = 2, seed: int = 0) -> dict[str, Any]:
    """The whole response envelope with `n` instances."""
    rng = random.Random(seed)
    return {
        "type": "sync",
        "status": "Success",
        "status_code": 200,
        "operation": "",
        "error_code": 0,
        "error": "",
        "metadata": [instance(i, rng, recursion) for i in range(n)],
    }


def main(argv: list[str] | None = None) -> int:
    """Write the generated response, compact, to stdout or a file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of instances")
    parser.add_argument("--recursion", type=int, choices=(1, 2), default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    # Compact, as LXD (Go encoding/json) writes it.
    data = json.dumps(
        generate(args.n, recursion=args.recursion, seed=args.seed), separators=(",", ":")
    )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(data)
    else:
        sys.stdout.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
