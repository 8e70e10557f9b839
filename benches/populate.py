"""Fill the LXD project `bench` with exactly N instances shaped like a busy GARM deployment.

Instance i is named pop-NNNNN. Nine in ten carry GARM's tags (3 controllers x 10 pools, ids are
UUIDs as GARM makes them) and a real-sized cloud-init user-data; one in ten is untagged (not
ours). One in ten is running (busybox); the rest are stopped containers created with
`"source": {"type": "none"}`, which skips the image unpack. No instance has a NIC (the profile's
eth0 is masked): 500 DHCP clients would exhaust the /24 of garmbr0 the test suite relies on,
and LXD 5.0 checks every new NIC's MAC address against all instances, which makes each create
cost O(N) (20 ms without a NIC, 150 ms with one, at 3,000 instances). Re-running only creates
what is missing, starts what should run and deletes pop-* instances beyond N.

    python benches/populate.py 1000            # grow (or shrink) to 1,000
    python benches/populate.py 0 --clean       # delete every instance in the project
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lxdapi import (
    DEFAULT_SOCKET,
    Lxd,
    LxdApiError,
    ensure_project,
    force_delete,
    instance_names,
    instance_path,
    with_project,
)

PROJECT = "bench"
PREFIX = "pop-"
IMAGE = "busybox"
CONTROLLERS = 3
POOLS_PER_CONTROLLER = 10
USER_DATA_FILE = (
    Path(__file__).resolve().parent.parent
    / "testdata/conformance/cases/s01_seed_example_base64.userdata"
)
_NAMESPACE = uuid.UUID("6f1d3c2e-8a55-4c1b-9d0e-2b7a1f4e5c60")


def controller_id(c: int) -> str:
    """Return the GARM controller id of controller number c."""
    return str(uuid.uuid5(_NAMESPACE, f"controller-{c}"))


def pool_id(c: int, p: int) -> str:
    """Return the GARM pool id of pool p of controller c."""
    return str(uuid.uuid5(_NAMESPACE, f"pool-{c}-{p}"))


def name_of(i: int) -> str:
    """Return the name of population instance i."""
    return f"{PREFIX}{i:05d}"


def is_running(i: int) -> bool:
    """Whether population instance i should be running (one in ten)."""
    return i % 10 == 0


def tags_of(i: int) -> tuple[str, str] | None:
    """Return (controller id, pool id) of instance i, or None for untagged ones."""
    if i % 10 == 9:
        return None
    c = i % CONTROLLERS
    return controller_id(c), pool_id(c, (i // CONTROLLERS) % POOLS_PER_CONTROLLER)


def instance_body(i: int, user_data_key: str, user_data: str) -> dict[str, object]:
    """Return the POST /1.0/instances body of population instance i."""
    config: dict[str, str] = {}
    tags = tags_of(i)
    if tags is not None:
        config = {
            "user.runner-controller-id": tags[0],
            "user.runner-pool-id": tags[1],
            "user.os-type": "linux",
            "user.os-arch": "amd64",
            user_data_key: user_data,
        }
    body: dict[str, object] = {
        "name": name_of(i),
        "type": "container",
        "profiles": ["default"],
        "config": config,
        "devices": {"eth0": {"type": "none"}},
    }
    if is_running(i):
        body["source"] = {"type": "image", "alias": IMAGE}
    else:
        body["source"] = {"type": "none"}
        body["architecture"] = "x86_64"
    return body


@dataclasses.dataclass
class Report:
    """What one populate run did and how long it took."""

    target: int
    created: int = 0
    started: int = 0
    deleted: int = 0
    seconds: float = 0.0
    mem_per_running_mb: float | None = None
    total_in_project: int = 0


def remove_stale_volume(error: str, project: str, name: str) -> bool:
    """Remove the directory a timed-out create left on the dir pool; True if it did."""
    # LXD rolls back the database row of a create whose transaction timed out but can leave
    # the instance's directory behind, and then refuses that name for good.
    match = re.search(r'Volume path "([^"]+)" already exists', error)
    if match is None:
        return False
    path = Path(match.group(1))
    expected = name if project in ("", "default") else f"{project}_{name}"
    if path.name != expected or path.parent.name != "containers":
        return False
    shutil.rmtree(path)
    return True


def mem_available_mb() -> float:
    """Return MemAvailable from /proc/meminfo in MiB."""
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return 0.0


def parallel(
    socket_path: str, jobs: Iterable[int], work: Callable[[Lxd, int], None], n: int
) -> None:
    """Run work(lxd, item) for every item on n threads, one LXD connection per thread."""
    local = threading.local()

    def run(item: int) -> None:
        lxd = getattr(local, "lxd", None)
        if lxd is None:
            lxd = local.lxd = Lxd(socket_path)
        work(lxd, item)

    with ThreadPoolExecutor(max_workers=n) as pool:
        for _ in pool.map(run, jobs):
            pass


def existing(lxd: Lxd, project: str) -> dict[str, str]:
    """Return {name: status} of every instance in project."""
    body = lxd.call("GET", with_project("/1.0/instances", project, recursion="1"))
    return {item["name"]: item["status"] for item in body["metadata"] or []}


def populate(
    n: int, *, socket_path: str = DEFAULT_SOCKET, project: str = PROJECT, concurrency: int = 4
) -> Report:
    """Make the project hold exactly pop-00000..pop-(n-1); return what it took."""
    start = time.monotonic()
    report = Report(target=n)
    lxd = Lxd(socket_path)
    ensure_project(lxd, project)
    have = existing(lxd, project)
    server = lxd.call("GET", "/1.0")["metadata"]
    key = "cloud-init.user-data" if "cloud_init" in server["api_extensions"] else "user.user-data"
    user_data = USER_DATA_FILE.read_text()

    surplus = [
        name
        for name in have
        if name.startswith(PREFIX) and name[4:].isdigit() and int(name[4:]) >= n
    ]
    missing = [i for i in range(n) if name_of(i) not in have]
    stopped_running = [
        i for i in range(n) if is_running(i) and have.get(name_of(i), "Stopped") != "Running"
    ]

    def delete(conn: Lxd, index: int) -> None:
        force_delete(conn, surplus[index], project, running=have[surplus[index]] != "Stopped")

    def create(conn: Lxd, i: int) -> None:
        body = instance_body(i, key, user_data)
        try:
            conn.run("POST", with_project("/1.0/instances", project), body)
        except LxdApiError as exc:
            if not remove_stale_volume(str(exc), project, name_of(i)):
                raise
            conn.run("POST", with_project("/1.0/instances", project), body)

    def start_one(conn: Lxd, i: int) -> None:
        conn.run("PUT", instance_path(name_of(i), project, "/state"), {"action": "start"})

    parallel(socket_path, range(len(surplus)), delete, concurrency)
    parallel(socket_path, missing, create, concurrency)
    before = mem_available_mb()
    parallel(socket_path, stopped_running, start_one, concurrency)
    if len(stopped_running) >= 20:
        time.sleep(2)  # let the new init processes settle before reading memory again
        report.mem_per_running_mb = (before - mem_available_mb()) / len(stopped_running)
    report.deleted, report.created, report.started = (
        len(surplus),
        len(missing),
        len(stopped_running),
    )
    report.total_in_project = len(existing(lxd, project))
    report.seconds = time.monotonic() - start
    lxd.close()
    return report


def clean(
    *, socket_path: str = DEFAULT_SOCKET, project: str = PROJECT, concurrency: int = 4
) -> int:
    """Delete every instance in the project; return how many there were."""
    lxd = Lxd(socket_path)
    ensure_project(lxd, project)
    # Names only (recursion=0): rendering an instance makes LXD 5.0 pin its log file, and
    # deleting thousands of pinned instances can run the daemon out of descriptors.
    names = instance_names(lxd, project)
    lxd.close()

    def delete(conn: Lxd, index: int) -> None:
        name = names[index]
        number = name[len(PREFIX) :]
        ours = name.startswith(PREFIX) and number.isdigit()
        force_delete(conn, name, project, running=not ours or is_running(int(number)))

    parallel(socket_path, range(len(names)), delete, concurrency)
    return len(names)


def main() -> int:
    """Command line: populate (or clean) the bench project."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="number of pop-* instances to have")
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    parser.add_argument("--project", default=PROJECT)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--clean", action="store_true", help="delete every instance first")
    args = parser.parse_args()
    if args.clean:
        begin = time.monotonic()
        removed = clean(socket_path=args.socket, project=args.project, concurrency=args.concurrency)
        print(f"deleted {removed} instances in {time.monotonic() - begin:.1f} s", file=sys.stderr)
    report = populate(
        args.count, socket_path=args.socket, project=args.project, concurrency=args.concurrency
    )
    print(json.dumps(dataclasses.asdict(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
