"""Concurrent DeleteInstance of running cloud-init instances while others boot, vs LXD's floor.

    python benches/bench_concurrent_deletes.py            # N=3 and N=6, 4 paired rounds each
    python benches/bench_concurrent_deletes.py --quick    # N=3, one round, results to a temp dir

GARM deletes several idle runners at once on scale-down while it boots their replacements.
Every round makes 2N running instances of the end-to-end cloud-init image (systemd, booted
to an address), then deletes N of them at once two ways, in alternating order: the floor (the
requests a DeleteInstance sends on this server, from one process, one connection per delete)
and N DeleteInstance processes run as GARM runs them. Two fresh instances boot (create +
start) during each of the two, so both face the same load. A round's ratio is the provider's
median delete over the floor's; the table reports the median of the rounds' ratios.

Run it with the interpreter the provider is installed in (e.g. .venv/bin/python) as root on
the test machine: tests/env/lxd-up.sh brings up the daemon, tests/e2e/build-image.sh imports
the image (both are run here if needed). Writes concurrent_deletes.md and .json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Bench, short_id
from lxdapi import DEFAULT_SOCKET, Lxd, ensure_project, force_delete, instance_names, wait_for_ipv4
from proc import find_script, median, write_results, wrote

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
IMAGE = "garm-cloudinit"
PROJECT = "bench-deletes"
BOOTING = 2
BOOT_SECONDS = 180.0
SETUP_THREADS = 4
FULL = {3: 4, 6: 4}
QUICK = {3: 1}
T = TypeVar("T")


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass
class Round:
    """One paired round: the per-delete seconds of the floor and of the provider."""

    n: int
    provider_first: bool
    floor: list[float]
    provider: list[float]
    floor_stop: list[float]
    floor_delete_op: list[float]
    load: float

    @property
    def ratio(self) -> float:
        """Provider median over floor median."""
        return median(self.provider) / median(self.floor)


class DeleteBench:
    """Instances of the cloud-init image in a project of their own, and the two ways to delete."""

    def __init__(self, bench: Bench, booting: int) -> None:
        self.bench = bench
        self.booting = booting
        self.force_delete = "instance_force_delete" in bench.extensions

    def body(self, name: str) -> dict[str, object]:
        """A create body shaped like the provider's, from the cloud-init image, started."""
        body = self.bench.create_body(name)
        body["source"] = {"type": "image", "alias": IMAGE}
        return body

    def make(self, name: str) -> None:
        """Create and start one instance (its own connection)."""
        lxd = self.bench.raw()
        try:
            lxd.run("POST", self.bench.path("/1.0/instances"), self.body(name))
            lxd.run("PUT", self.bench.ipath(name, "/state"), {"action": "start"})
        finally:
            lxd.close()

    def make_booted(self, names: list[str]) -> None:
        """Create, start and wait until every instance has an IPv4 address (untimed setup)."""

        def one(name: str) -> None:
            self.make(name)
            lxd = self.bench.raw()
            try:
                if not wait_for_ipv4(lxd, name, self.bench.project, BOOT_SECONDS):
                    raise RuntimeError(f"{name} got no IPv4 address in {BOOT_SECONDS:g} s")
            finally:
                lxd.close()

        with ThreadPoolExecutor(max_workers=SETUP_THREADS) as pool:
            list(pool.map(one, names))

    def floor_delete(self, name: str) -> tuple[float, float, float]:
        """Send what DeleteInstance sends for a running instance; return (total, stop, delete)."""
        b = self.bench
        begin = time.perf_counter()
        lxd = b.raw()
        try:
            lxd.call("GET", b.path("/1.0"))
            lxd.call("GET", b.ipath(name))
            if self.force_delete:
                lxd.run("DELETE", b.ipath(name, force="true"))
                stopped = begin
            else:
                lxd.run(
                    "PUT", b.ipath(name, "/state"), {"action": "stop", "force": True, "timeout": 30}
                )
                stopped = time.perf_counter()
                lxd.run("DELETE", b.ipath(name))
        finally:
            lxd.close()
        end = time.perf_counter()
        return end - begin, stopped - begin, end - stopped

    def provider_delete(self, name: str) -> float:
        """Run one DeleteInstance process as GARM does; return its wall time."""
        sample = self.bench.provider("DeleteInstance", instance=name, pool="", config="default")
        if self.bench.exists(name):
            raise RuntimeError(f"DeleteInstance left {name} behind")
        return sample.wall

    def with_booting(self, deletes: list[str], delete: Callable[[str], T]) -> list[T]:
        """Run delete on every name at once while new instances are created and started."""
        booting = [f"bd-boot-{short_id()}" for _ in range(self.booting)]
        threads = [threading.Thread(target=self.make, args=(name,)) for name in booting]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # the boots are under way (image unpacked into the pool, then started)
        try:
            with ThreadPoolExecutor(max_workers=len(deletes)) as pool:
                return list(pool.map(delete, deletes))
        finally:
            for thread in threads:
                thread.join()
            self.discard(booting)

    def discard(self, names: list[str]) -> None:
        """Delete instances if they still exist (cleanup, untimed)."""

        def one(name: str) -> None:
            lxd = self.bench.raw()
            try:
                force_delete(lxd, name, self.bench.project)
            finally:
                lxd.close()

        with ThreadPoolExecutor(max_workers=SETUP_THREADS) as pool:
            list(pool.map(one, names))

    def round(self, n: int, provider_first: bool) -> Round:
        """One paired round of n concurrent deletes each way."""
        floor_names = [f"bd-floor-{short_id()}" for _ in range(n)]
        prov_names = [f"bd-prov-{short_id()}" for _ in range(n)]
        try:
            self.make_booted(floor_names + prov_names)
            time.sleep(5.0)  # let the boots' last work (cloud-init) pass
            floor: list[tuple[float, float, float]] = []
            provider: list[float] = []
            for which in ("provider", "floor") if provider_first else ("floor", "provider"):
                if which == "floor":
                    floor = self.with_booting(floor_names, self.floor_delete)
                else:
                    provider = self.with_booting(prov_names, self.provider_delete)
                time.sleep(2.0)
        finally:
            self.discard(floor_names + prov_names)
        return Round(
            n=n,
            provider_first=provider_first,
            floor=[total for total, _, _ in floor],
            provider=provider,
            floor_stop=[stop for _, stop, _ in floor],
            floor_delete_op=[rest for _, _, rest in floor],
            load=os.getloadavg()[0],
        )


def ensure_image(socket_path: str) -> None:
    """Import the cloud-init image into the daemon behind socket_path if it is missing."""
    lxd = Lxd(socket_path)
    status, _ = lxd.request("GET", f"/1.0/images/aliases/{IMAGE}")
    lxd.close()
    if status == 200:
        return
    log(f"building/importing {IMAGE} (tests/e2e/build-image.sh)")
    env = {**os.environ, "LXD_DIR": str(Path(socket_path).parent)}
    subprocess.run(["bash", str(ROOT / "tests/e2e/build-image.sh")], env=env, check=True)


def write(out: Path, meta: dict[str, object], rounds: list[Round], booting: int) -> None:
    """Write concurrent_deletes.md and concurrent_deletes.json."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Concurrent DeleteInstance of running cloud-init instances",
        "",
        "Written by `benches/bench_concurrent_deletes.py` (see its docstring and",
        "docs/performance.md). Per round: N running instances of the e2e cloud-init image are",
        "deleted at once by the floor (the same requests from one process, one connection per",
        f"delete), and N others by N DeleteInstance processes; {booting} new instances boot",
        "during each. Seconds per delete; the ratio is the median over rounds of",
        "(provider median / floor median) of the same round.",
        "",
        f"Machine: {meta['machine']}; LXD {meta['lxd']} ({meta['storage']} storage, "
        f"{meta['delete_requests']}); {meta['date']}; mode {meta['mode']}; "
        f"load average during the rounds {meta['load']}.",
        "",
        "| N | rounds | LXD floor median | provider median | ratio (median) | ratio range "
        "| floor: stop | floor: DELETE op |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for n in sorted({r.n for r in rounds}):
        mine = [r for r in rounds if r.n == n]
        ratios = [r.ratio for r in mine]
        lines.append(
            f"| {n} | {len(mine)} "
            f"| {median([median(r.floor) for r in mine]):.2f} s "
            f"| {median([median(r.provider) for r in mine]):.2f} s "
            f"| {median(ratios):.2f} | {min(ratios):.2f} to {max(ratios):.2f} "
            f"| {median([median(r.floor_stop) for r in mine]):.2f} s "
            f"| {median([median(r.floor_delete_op) for r in mine]):.2f} s |"
        )
    lines += ["", "Every round (seconds per delete, in the order they ran):", ""]
    for r in rounds:
        first = "provider" if r.provider_first else "floor"
        floor = ", ".join(f"{x:.1f}" for x in r.floor)
        prov = ", ".join(f"{x:.1f}" for x in r.provider)
        lines.append(
            f"- N={r.n}, {first} first: floor [{floor}], provider [{prov}], "
            f"ratio {r.ratio:.2f}, load {r.load:.1f}"
        )
    (out / "concurrent_deletes.md").write_text("\n".join(lines) + "\n")
    raw = {"meta": meta, "rounds": [dataclasses.asdict(r) for r in rounds]}
    (out / "concurrent_deletes.json").write_text(json.dumps(raw, indent=1) + "\n")


def run(args: argparse.Namespace, out: Path) -> None:
    """Run every round and write the results to out."""
    plan = QUICK if args.quick else {n: args.rounds for n in args.counts}
    ensure_image(args.socket)
    with tempfile.TemporaryDirectory(prefix="garm-bench-") as workdir:
        bench = Bench(find_script(args.provider), args.socket, PROJECT, PROJECT, Path(workdir))
        ensure_project(bench.lxd, PROJECT)
        leftovers = instance_names(bench.lxd, PROJECT)  # from an interrupted run
        deletes = DeleteBench(bench, args.booting)
        deletes.discard(leftovers)
        storage = bench.lxd.call("GET", "/1.0/storage-pools/default")["metadata"]["driver"]
        started = time.monotonic()
        rounds: list[Round] = []
        for n, count in plan.items():
            for rep in range(count):
                log(f"N={n}: round {rep + 1} of {count}")
                done = deletes.round(n, provider_first=bool(rep % 2))
                log(
                    f"  floor {median(done.floor):.2f} s, provider {median(done.provider):.2f} s, "
                    f"ratio {done.ratio:.2f}"
                )
                rounds.append(done)
        meta: dict[str, object] = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} cores, Linux {os.uname().release}",
            "lxd": bench.server_version,
            "storage": storage,
            "delete_requests": (
                "DELETE ?force=true" if deletes.force_delete else "PUT stop (force) + DELETE"
            ),
            "mode": "quick" if args.quick else "full",
            "load": f"{min(r.load for r in rounds):.1f} to {max(r.load for r in rounds):.1f}",
            "seconds": round(time.monotonic() - started, 1),
        }
    write(out, meta, rounds, args.booting)
    print((out / "concurrent_deletes.md").read_text())
    log(f"{wrote(out / 'concurrent_deletes.md')} in {meta['seconds']} s")


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=3, one round, temp results")
    parser.add_argument("--out", type=Path, help="results directory (default: benches/results)")
    parser.add_argument("--provider", help="console script to run (default: next to python)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    parser.add_argument(
        "--counts", type=lambda text: [int(x) for x in text.split(",")], default=list(FULL)
    )
    parser.add_argument("--rounds", type=int, default=max(FULL.values()))
    parser.add_argument(
        "--booting", type=int, default=BOOTING, help=f"instances booting meanwhile ({BOOTING})"
    )
    args = parser.parse_args()
    if not Path(args.socket).exists():
        log(f"no LXD socket at {args.socket}: run tests/env/lxd-up.sh first")
        return 2
    write_results(lambda out: run(args, out), args.out, args.quick, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
