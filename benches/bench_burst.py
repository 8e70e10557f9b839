"""Runners at volume: bursts of creates and deletes, and a sustained pool, against LXD's floor.

    python benches/bench_burst.py                 # bursts of 10, 40, 100 (2 rounds) + 5 min pool
    python benches/bench_burst.py --quick         # CI smoke run: a burst of 5, a 20 s pool
    python benches/bench_burst.py --sizes 40 --rounds 3 --sustain-seconds 0
    python benches/bench_burst.py --sizes 10 --sustain-seconds 0 --storage dir,btrfs \
        --image garm-cloudinit --name burst-storage      # what the storage driver costs

GARM starts one provider process per runner create and per delete, many at once. A *burst*
starts N CreateInstance processes at the same moment (each returns when its instance has an
IPv4 address), then N DeleteInstance processes. LXD's *floor* does the same work from one
process with N threads and no provider in between: POST (with start), poll the state every
0.1 s for an address; force-stop and DELETE. Rounds alternate which goes first. The *sustained*
run keeps K runners alive, each living a random few seconds before it is deleted and replaced,
as GARM's create/delete mix does, and reports runners per minute, create latency and the CPU
LXD and the provider processes used per runner (from /proc). With `--storage dir,btrfs`
every burst runs once per storage driver (the root disk on a loop-backed pool of that driver,
through a copy of the `default` profile used as the pool's flavor), so the tables show what
copy-on-write storage saves.

The provider's config has the command record on (`[diagnostics] command_log`, rotated every
8 KiB so that rotation happens during the bursts): after the run every provider process must
have left exactly one whole line in the log or its rotated copies. A torn, missing or extra
line counts as a failure, and the report gives the record's own medians of wall time and of the
time waited on LXD.

Run it with the interpreter the provider is installed in (e.g. .venv/bin/python); the LXD
daemon comes from tests/env/lxd-up.sh. Writes burst.md, burst.json and burst.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import os
import random
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import IMAGE, Bench, short_id
from lxdapi import (
    DEFAULT_SOCKET,
    Lxd,
    LxdApiError,
    ensure_project,
    force_delete,
    instance_names,
    storage_profile,
    wait_for_ipv4,
)
from proc import (
    Sample,
    checkout_commit,
    find_script,
    median,
    percentile,
    run,
    write_results,
    wrote,
)

RESULTS = Path(__file__).resolve().parent / "results"
PROJECT = "burst"
CONTROLLER = "8e3f6a2d-5b7c-4d19-a0e4-2c9b1f7d3a55"
POOL = "c4a9e1f7-2d3b-4c6a-9e8f-1b5d7a3c9e02"
ADDRESS_TIMEOUT = 60.0
COMMAND_LOG = "commands.log"
COMMAND_LOG_MAX_BYTES = 8192  # small, so that processes rotate it during a burst
COMMAND_LOG_KEEP = 500  # more copies than rotations, so every line is still there to count


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass
class Burst:
    """One burst: N operations started together; per-operation latencies and the whole wall."""

    who: str  # "lxd" or "provider"
    what: str  # "create" or "delete"
    n: int
    wall: float
    latencies: list[float]
    failures: list[str]
    cpu: float = 0.0  # provider processes' CPU, summed (0 for the floor)

    def summary(self) -> dict[str, Any]:
        """The numbers the report keeps."""
        return {
            "who": self.who,
            "what": self.what,
            "n": self.n,
            "wall": round(self.wall, 3),
            "p50": round(percentile(self.latencies, 50), 3),
            "p95": round(percentile(self.latencies, 95), 3),
            "failures": len(self.failures),
            "first_failure": self.failures[0] if self.failures else "",
            "cpu_per_op": round(self.cpu / self.n, 4) if self.n else 0.0,
        }


def lxd_pid(socket_path: str) -> int | None:
    """Return the pid of the LXD daemon behind the socket (SO_PEERCRED)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", creds)[0])
    except OSError:
        return None
    finally:
        sock.close()


def process_cpu(pid: int | None) -> float:
    """CPU seconds used by pid and its reaped children so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def together(n: int, job: Callable[[int], tuple[float, str, float]]) -> Burst:
    """Start job(0..n-1) at the same moment on n threads; collect latencies and failures."""
    barrier = threading.Barrier(n + 1)
    results: list[tuple[float, str, float]] = [(0.0, "", 0.0)] * n

    def one(index: int) -> None:
        barrier.wait()
        begin = time.perf_counter()
        try:
            _, failure, cpu = job(index)
        except Exception as exc:  # a failed operation is a result, not a crash of the bench
            failure, cpu = f"{type(exc).__name__}: {exc}", 0.0
        results[index] = (time.perf_counter() - begin, failure, cpu)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    barrier.wait()
    begin = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - begin
    return Burst(
        who="",
        what="",
        n=n,
        wall=wall,
        latencies=[r[0] for r in results],
        failures=[r[1] for r in results if r[1]],
        cpu=sum(r[2] for r in results),
    )


class Load:
    """The provider, as GARM runs it, and LXD's floor for the same work."""

    def __init__(self, bench: Bench, image: str, profile: str) -> None:
        self.bench = bench
        self.image = image
        self.profile = profile  # "" for the default profile's pool
        self.start_in_post = "instance_create_start" in bench.extensions
        self.force_delete = "instance_force_delete" in bench.extensions
        # (command, instance) of every provider process: each appends one line to the record.
        self.provider_runs: list[tuple[str, str]] = []
        self._counting = threading.Lock()

    def _provider(self, command: str, name: str, env: dict[str, str], stdin: bytes = b"") -> Sample:
        with self._counting:
            self.provider_runs.append((command, name))
        return run([str(self.bench.script)], env, stdin)

    # -- LXD's floor ------------------------------------------------------------------------

    def floor_create(self, name: str) -> tuple[float, str, float]:
        """POST (and start), then poll the state every 0.1 s until there is an IPv4 address."""
        lxd = self.bench.raw()
        try:
            body = self.bench.create_body(name, controller=CONTROLLER, pool=POOL)
            body["source"]["alias"] = self.image
            body["profiles"] = [self.profile or "default"]
            if self.start_in_post:
                body["start"] = True
            lxd.run("POST", self.bench.path("/1.0/instances"), body)
            if not self.start_in_post:
                lxd.run("PUT", self.bench.ipath(name, "/state"), {"action": "start"})
            address = wait_for_ipv4(lxd, name, self.bench.project, ADDRESS_TIMEOUT)
            return 0.0, "" if address else "no IPv4 address", 0.0
        finally:
            lxd.close()

    def floor_delete(self, name: str) -> tuple[float, str, float]:
        """Force-stop and delete, the fewest requests this server allows."""
        lxd = self.bench.raw()
        try:
            if self.force_delete:
                try:
                    lxd.run("DELETE", self.bench.ipath(name, force="true"))
                    return 0.0, "", 0.0
                except LxdApiError as exc:
                    if "running" not in str(exc).lower():
                        raise
            force_delete(lxd, name, self.bench.project)
            return 0.0, "", 0.0
        finally:
            lxd.close()

    # -- the provider -----------------------------------------------------------------------

    def provider_create(self, name: str) -> tuple[float, str, float]:
        """One CreateInstance process, as GARM runs it; fails without an IPv4 address."""
        env = self.bench.env(
            "CreateInstance", controller=CONTROLLER, pool=POOL, instance="", config="burst"
        )
        # GARM puts its own runner_install_template into every create's specs.
        bootstrap = json.loads(self.bench.bootstrap(name, template=True))
        bootstrap.update(pool_id=POOL, image=self.image, flavor=self.profile or "default")
        stdin = json.dumps(bootstrap, separators=(",", ":")).encode()
        sample = self._provider("CreateInstance", name, env, stdin)
        if sample.returncode != 0:
            return 0.0, f"exit {sample.returncode}: {sample.stderr.decode().strip()}", sample.cpu
        addresses = json.loads(sample.stdout).get("addresses") or []
        if not any(":" not in str(a.get("address", "")) for a in addresses):
            return 0.0, "returned without an IPv4 address", sample.cpu
        return 0.0, "", sample.cpu

    def provider_delete(self, name: str) -> tuple[float, str, float]:
        """One DeleteInstance process, as GARM runs it."""
        env = self.bench.env(
            "DeleteInstance", controller=CONTROLLER, pool=POOL, instance=name, config="burst"
        )
        sample = self._provider("DeleteInstance", name, env)
        failure = "" if sample.returncode == 0 else f"exit {sample.returncode}"
        return 0.0, failure, sample.cpu

    # -- bursts -----------------------------------------------------------------------------

    def burst(self, who: str, n: int) -> tuple[Burst, Burst, int]:
        """N creates at once, then N deletes at once; return both and the instances left."""
        names = [f"burst-{short_id()}" for _ in range(n)]
        create = self.floor_create if who == "lxd" else self.provider_create
        delete = self.floor_delete if who == "lxd" else self.provider_delete
        created = together(n, lambda i: create(names[i]))
        created.who, created.what = who, "create"
        time.sleep(1)
        deleted = together(n, lambda i: delete(names[i]))
        deleted.who, deleted.what = who, "delete"
        left = len(set(names) & set(instance_names(self.bench.lxd, self.bench.project)))
        for name in names:  # whatever a failure left behind must not skew the next round
            force_delete(self.bench.lxd, name, self.bench.project)
        return created, deleted, left

    # -- a sustained pool -------------------------------------------------------------------

    def sustained(
        self, who: str, keep: int, seconds: float, life: tuple[float, float]
    ) -> dict[str, Any]:
        """Keep `keep` runners alive for `seconds`, each living a random time, then replaced."""
        create = self.floor_create if who == "lxd" else self.provider_create
        delete = self.floor_delete if who == "lxd" else self.provider_delete
        pid = lxd_pid(self.bench.socket_path)
        lxd_cpu_before = process_cpu(pid)
        lock = threading.Lock()
        create_latencies: list[float] = []
        failures: list[str] = []
        provider_cpu = [0.0]
        completed = [0]
        stop_at = time.monotonic() + seconds
        rng = random.Random(7)

        def slot() -> None:
            while time.monotonic() < stop_at:
                name = f"pool-{short_id()}"
                begin = time.perf_counter()
                _, failure, cpu = create(name)
                took = time.perf_counter() - begin
                if not failure:
                    with lock:
                        lifetime = rng.uniform(*life)
                    time.sleep(lifetime)
                _, delete_failure, delete_cpu = delete(name)
                with lock:
                    create_latencies.append(took)
                    provider_cpu[0] += cpu + delete_cpu
                    if failure or delete_failure:
                        failures.append(failure or delete_failure)
                    else:
                        completed[0] += 1

        begin = time.monotonic()
        with ThreadPoolExecutor(max_workers=keep) as pool:
            list(pool.map(lambda _: slot(), range(keep)))
        elapsed = time.monotonic() - begin
        lxd_cpu = process_cpu(pid) - lxd_cpu_before
        runners = max(completed[0], 1)
        return {
            "who": who,
            "keep": keep,
            "seconds": round(elapsed, 1),
            "runners": completed[0],
            "runners_per_minute": round(completed[0] * 60 / elapsed, 1),
            "create_p50": round(percentile(create_latencies, 50), 3),
            "create_p95": round(percentile(create_latencies, 95), 3),
            "failures": len(failures),
            "first_failure": failures[0] if failures else "",
            "lxd_cpu_per_runner": round(lxd_cpu / runners, 3),
            "provider_cpu_per_runner": round(provider_cpu[0] / runners, 3),
        }


def read_command_record(directory: Path, runs: list[tuple[str, str]]) -> dict[str, Any]:
    """Check the command record the provider processes wrote: one whole line each, none lost.

    runs holds (command, instance) of every process started; each must match exactly one line.
    """
    records: list[dict[str, Any]] = []
    torn = 0
    files = [
        path
        for path in directory.iterdir()
        if path.name.startswith(COMMAND_LOG) and not path.name.endswith(".lock")
    ]
    for path in files:
        *whole, unterminated = path.read_bytes().split(b"\n")
        torn += bool(unterminated)  # a line is whole only with its newline
        for raw in whole:
            try:
                record = json.loads(raw)
            except ValueError:
                torn += 1
                continue
            if isinstance(record, dict) and "command" in record and "wall" in record:
                records.append(record)
            else:
                torn += 1
    launched = Counter(runs)
    written = Counter((str(r["command"]), str(r.get("instance", ""))) for r in records)
    summary: dict[str, Any] = {
        "processes": len(runs),
        "lines": len(records),
        "torn": torn,
        "missing": sum((launched - written).values()),
        "extra": sum((written - launched).values()),
        "files": len(files),
    }
    for command in ("CreateInstance", "DeleteInstance"):
        mine = [r for r in records if r["command"] == command]
        summary[command] = {
            "lines": len(mine),
            "failed": sum(1 for r in mine if r.get("exit") != 0),
            "wall_p50": _record_p50(mine, "wall"),
            "lxd_p50": _record_p50(mine, "lxd"),
            "lxd_operations_p50": _record_p50(mine, "lxd_operations"),
        }
    return summary


def _record_p50(records: list[dict[str, Any]], key: str) -> float:
    return round(median([float(r.get(key, 0)) for r in records]), 3) if records else 0.0


def markdown(
    bursts: list[dict[str, Any]],
    pools: list[dict[str, Any]],
    meta: dict[str, Any],
    record: dict[str, Any] | None = None,
) -> str:
    """The results tables: bursts by size (medians over rounds, ratio to the floor), the pool."""
    lines = [
        "# Runners at volume: bursts and a sustained pool",
        "",
        f"Run {meta['when']} at commit {meta['commit']}, LXD {meta['server']}, "
        f"image `{meta.get('image', IMAGE)}`, "
        f"project `{PROJECT}`, {meta['rounds']} round(s) a size; load average at start "
        f"{meta['load']}. Medians over rounds; p50/p95 are per operation within a burst. The "
        "floor is LXD doing the same work from one process with one thread per instance.",
        "",
        "| burst | storage | N | LXD floor wall | provider wall | ratio | provider p50 / p95 | "
        "floor p50 / p95 | provider CPU per op | failures | left |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    storages = list(dict.fromkeys(b.get("storage", "dir") for b in bursts))
    for what, driver, n in itertools.product(
        ("create", "delete"), storages, sorted({b["n"] for b in bursts})
    ):
        mine = [
            b
            for b in bursts
            if b["what"] == what and b["n"] == n and b.get("storage", "dir") == driver
        ]
        floor = [b for b in mine if b["who"] == "lxd"]
        ours = [b for b in mine if b["who"] == "provider"]
        if not floor or not ours:
            continue
        ratios = [p["wall"] / f["wall"] for f, p in zip(floor, ours, strict=False)]
        lines.append(
            f"| {what} | {driver} | {n} | {median([b['wall'] for b in floor]):.2f} s "
            f"| {median([b['wall'] for b in ours]):.2f} s | {median(ratios):.2f}x "
            f"| {_p50_p95(ours)} | {_p50_p95(floor)} "
            f"| {median([b['cpu_per_op'] for b in ours]) * 1000:.0f} ms "
            f"| {sum(b['failures'] for b in mine)} | {sum(b.get('left', 0) for b in mine)} |"
        )
    if pools:
        lines += [
            "",
            "Sustained pool (each runner lives a random few seconds, then is deleted and "
            "replaced):",
            "",
            "| who | runners kept | seconds | runners/min | create p50 / p95 | LXD CPU per runner "
            "| provider CPU per runner | failures |",
            "|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for p in pools:
            lines.append(
                f"| {p['who']} | {p['keep']} | {p['seconds']} | {p['runners_per_minute']} "
                f"| {p['create_p50']:.2f} / {p['create_p95']:.2f} s | {p['lxd_cpu_per_runner']} s "
                f"| {p['provider_cpu_per_runner']} s | {p['failures']} |"
            )
    if record:
        lines += [
            "",
            f"Command record (`[diagnostics] command_log`, rotated every {COMMAND_LOG_MAX_BYTES} "
            f"bytes): {record['processes']} provider processes, {record['lines']} whole lines in "
            f"{record['files']} files, {record['torn']} torn, {record['missing']} missing, "
            f"{record['extra']} extra.",
            "",
            "| command | lines | exit ≠ 0 | wall p50 | waiting on LXD p50 "
            "| of it, on operations p50 |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        for command in ("CreateInstance", "DeleteInstance"):
            row = record[command]
            lines.append(
                f"| {command} | {row['lines']} | {row['failed']} | {row['wall_p50']:.2f} s "
                f"| {row['lxd_p50']:.2f} s | {row['lxd_operations_p50']:.2f} s |"
            )
    return "\n".join(lines) + "\n"


def _p50_p95(rows: list[dict[str, Any]]) -> str:
    return f"{median([r['p50'] for r in rows]):.2f} / {median([r['p95'] for r in rows]):.2f} s"


def plot(bursts: list[dict[str, Any]], path: Path) -> bool:
    """Plot runners per minute and p95 latency against N; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sizes = sorted({b["n"] for b in bursts})
    storages = list(dict.fromkeys(b.get("storage", "dir") for b in bursts))
    figure, (rate_axis, latency_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for (who, style), driver in itertools.product((("lxd", "--"), ("provider", "-")), storages):
        creates = [
            [
                b
                for b in bursts
                if b["who"] == who
                and b["what"] == "create"
                and b["n"] == n
                and b.get("storage", "dir") == driver
            ]
            for n in sizes
        ]
        rate = [
            median([n * 60 / b["wall"] for b in group])
            for n, group in zip(sizes, creates, strict=True)
        ]
        p95 = [median([b["p95"] for b in group]) for group in creates]
        label = "LXD floor" if who == "lxd" else "provider"
        if len(storages) > 1:
            label += f", {driver}"
        rate_axis.plot(sizes, rate, style, marker="o", label=label)
        latency_axis.plot(sizes, p95, style, marker="o", label=label)
    rate_axis.set(xlabel="creates started at once (N)", ylabel="runners created per minute")
    latency_axis.set(xlabel="creates started at once (N)", ylabel="p95 create latency (s)")
    for axis in (rate_axis, latency_axis):
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True


def bench_run(args: argparse.Namespace, out: Path) -> int:
    """Run the bursts and the pool; write the results; return the number of failures."""
    script = find_script(args.provider)
    with tempfile.TemporaryDirectory(prefix="garm-bench-burst-") as tmp:
        lxd = Lxd(args.socket)
        ensure_project(lxd, PROJECT)
        for name in instance_names(lxd, PROJECT):  # a killed earlier run's leftovers
            force_delete(lxd, name, PROJECT)
        bench = Bench(script, args.socket, PROJECT, PROJECT, Path(tmp))
        # The provider waits for an address as long as the floor polls for one.
        config = Path(tmp) / "burst.toml"
        config.write_text(
            f'unix_socket_path = "{args.socket}"\nproject_name = "{PROJECT}"\n'
            f"address_wait_seconds = {ADDRESS_TIMEOUT:g}\n"
            f'[diagnostics]\ncommand_log = "{tmp}/{COMMAND_LOG}"\n'
            f"command_log_max_bytes = {COMMAND_LOG_MAX_BYTES}\n"
            f"command_log_keep = {COMMAND_LOG_KEEP}\n"
        )
        bench.configs["burst"] = config
        sizes = [5] if args.quick else args.sizes
        rounds = 1 if args.quick else args.rounds
        bursts: list[dict[str, Any]] = []
        loads = {
            driver: Load(bench, args.image, storage_profile(lxd, driver)) for driver in args.storage
        }
        for driver, load in loads.items():
            for n in sizes:
                for rep in range(rounds):
                    order = ("lxd", "provider") if rep % 2 == 0 else ("provider", "lxd")
                    for who in order:
                        created, deleted, left = load.burst(who, n)
                        for burst in (created, deleted):
                            row = burst.summary() | {
                                "round": rep,
                                "storage": driver,
                                "left": left if burst is deleted else 0,
                            }
                            bursts.append(row)
                            log(
                                f"{who} {burst.what} N={n} {driver} round {rep}: wall "
                                f"{burst.wall:.2f} s, failures {len(burst.failures)}, left {left}"
                            )
                        time.sleep(args.settle)
        pools = []
        seconds = 20.0 if args.quick else args.sustain_seconds
        if seconds > 0:
            keep = 3 if args.quick else args.keep
            load = loads[args.storage[0]]
            for who in ("lxd", "provider"):
                pools.append(load.sustained(who, keep, seconds, (2.0, 8.0)))
                log(f"sustained {who}: {pools[-1]}")
                time.sleep(args.settle)
        runs = [run for load in loads.values() for run in load.provider_runs]
        record = read_command_record(Path(tmp), runs)
        log(f"command record: {record}")
    meta = {
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": checkout_commit(),
        "server": bench.server_version,
        "rounds": rounds,
        "image": args.image,
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.md").write_text(markdown(bursts, pools, meta, record))
    (out / f"{args.name}.json").write_text(
        json.dumps(
            {"meta": meta, "bursts": bursts, "pools": pools, "command_record": record}, indent=1
        )
    )
    if not args.quick and not plot(bursts, out / f"{args.name}.png"):
        log(f"matplotlib is not installed: no {args.name}.png")
    failures = sum(int(b["failures"]) + int(b["left"]) for b in bursts)
    failures += sum(int(p["failures"]) for p in pools)
    failures += int(record["torn"]) + int(record["missing"]) + int(record["extra"])
    log(f"{wrote(out / f'{args.name}.md')} ({failures} failures)")
    return failures


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a burst of 5 and a 20 s pool")
    parser.add_argument(
        "--sizes", type=lambda t: [int(x) for x in t.split(",")], default=[10, 40, 100]
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", type=int, default=20, help="runners the sustained pool keeps")
    parser.add_argument("--sustain-seconds", type=float, default=300.0)
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds between runs")
    parser.add_argument("--out", type=Path, help="results directory (default: benches/results)")
    parser.add_argument("--provider", help="console script to run (default: next to python)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    parser.add_argument(
        "--storage",
        type=lambda t: t.split(","),
        default=["dir"],
        help="storage drivers to run every burst on, e.g. dir,btrfs (default dir)",
    )
    parser.add_argument("--image", default=IMAGE, help=f"image alias (default {IMAGE})")
    parser.add_argument("--name", default="burst", help="results file name (default burst)")
    args = parser.parse_args()
    if not Path(args.socket).exists():
        log(f"no LXD socket at {args.socket}: run tests/env/lxd-up.sh first")
        return 2
    failures = write_results(lambda out: bench_run(args, out), args.out, args.quick, RESULTS)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
