"""Whole-process timings of every provider command against the test LXD, with raw-LXD floors.

    python benches/bench_commands.py            # full run: 100, 1,000 and 5,000 instances
    python benches/bench_commands.py --quick    # CI smoke run (< 2 min), results to a temp dir

Run it with the interpreter the provider is installed in (e.g. .venv/bin/python); the LXD
daemon comes from tests/env/lxd-up.sh. Writes commands.md, commands.json and list_scaling.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import populate
import report
import scenarios
from harness import Bench, Row
from lxdapi import DEFAULT_SOCKET, Lxd, daemon_fds, ensure_project, force_delete, instance_names
from proc import QUICK_PREFIX, find_script, wrote

RESULTS = Path(__file__).resolve().parent / "results"
FULL = {"floor": 20, "fast": 15, "state": 10, "create": 8, "big_list": 11, "rm_reps": 2}
QUICK = {"floor": 3, "fast": 3, "state": 3, "create": 2, "big_list": 2, "rm_reps": 1}


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def machine() -> str:
    """Describe the machine in one phrase."""
    return f"{os.cpu_count()} cores, Linux {platform.release()}"


def build_source(script: Path) -> str:
    """Return what benches/venv.sh recorded about the build it installed, if it did."""
    marker = script.parent.parent / "garm-bench-source"
    return marker.read_text().strip() if marker.exists() else "unknown (not from benches/venv.sh)"


def prepare_population(args: argparse.Namespace, smallest: int) -> None:
    """Start from at most `smallest` instances, so the population only grows in this run."""
    # Trimming thousands of listed instances is what runs LXD 5.0 out of descriptors;
    # deleting by name (populate.clean) before anything renders them is the cheap way down.
    lxd = Lxd(args.socket)
    have = sum(1 for name in instance_names(lxd, args.project) if name.startswith(populate.PREFIX))
    lxd.close()
    if have > smallest:
        log(f"deleting the {have:,} instances of project {args.project} to start from {smallest}")
        populate.clean(socket_path=args.socket, project=args.project)


def check_fd_headroom(socket_path: str, project: str, count: int) -> None:
    """Refuse to grow the population when the LXD daemon would run out of file descriptors."""
    fds = daemon_fds(socket_path)
    if fds is None:
        return
    used, limit = fds
    lxd = Lxd(socket_path)
    have = sum(1 for name in instance_names(lxd, project) if name.startswith(populate.PREFIX))
    lxd.close()
    # LXD 5.0 keeps two descriptors per instance it has rendered once; keep 2,000 spare.
    need = 2 * max(0, count - have) + 2000
    if limit - used < need:
        raise SystemExit(
            f"bench: LXD has {used} of {limit} file descriptors open; {count:,} instances need "
            f"~{need:,} more (LXD 5.0 leaks one per listed-then-deleted instance): restart the "
            "daemon, or use a private one (benches/lxd-up.sh), or smaller --counts"
        )


def run(args: argparse.Namespace, out: Path) -> None:
    """Run every scenario and write the results to out."""
    reps = QUICK if args.quick else FULL
    size = 10 if args.quick else args.remove_all_size
    cmd_project = f"{args.project}-cmd"
    with tempfile.TemporaryDirectory(prefix="garm-bench-") as workdir:
        script = find_script(args.provider)
        bench = Bench(script, args.socket, cmd_project, args.project, Path(workdir))
        ensure_project(bench.lxd, args.project)
        ensure_project(bench.lxd, cmd_project)
        for name in instance_names(bench.lxd, cmd_project):  # left by an interrupted run
            force_delete(bench.lxd, name, cmd_project)
        counts = sorted(set([100] if args.quick else args.counts))
        prepare_population(args, counts[0])
        version = bench.provider("GetVersion").stdout.decode().strip()
        populated: list[dict[str, object]] = []
        meta: dict[str, object] = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "lxd": bench.server_version,
            "provider_version": version,
            "python": f"{bench.python}",
            "script": str(bench.script),
            "build": build_source(script),
            "mode": "quick" if args.quick else "full",
            "projects": {"commands": cmd_project, "population": args.project},
            "populate": populated,
            "lxd_fds_before": daemon_fds(args.socket),
        }
        rows: list[Row] = []
        started = time.monotonic()
        steps: list[tuple[str, Callable[[], list[Row]]]] = [
            ("python -c pass", lambda: [scenarios.python_floor(bench, reps["floor"])]),
            ("GetVersion", lambda: [scenarios.get_version(bench, reps["floor"])]),
            ("GetInstance", lambda: [scenarios.get_instance(bench, reps["fast"])]),
            ("Start/StopInstance", lambda: list(scenarios.start_stop(bench, reps["state"]))),
            ("DeleteInstance", lambda: [scenarios.delete_running(bench, reps["state"])]),
            ("CreateInstance", lambda: [scenarios.create(bench, reps["create"], wait=False)]),
            ("CreateInstance+wait", lambda: [scenarios.create(bench, reps["create"], wait=True)]),
            (
                "CreateInstance, pool template",
                lambda: [scenarios.create(bench, reps["create"], wait=False, template=True)],
            ),
        ]
        for name, step in steps:
            log(name)
            rows.extend(step())
        log(f"RemoveAllInstances of {size} vs sequential deletes")
        tail = list(scenarios.remove_all(bench, reps["rm_reps"], size))
        for count in counts:
            check_fd_headroom(args.socket, args.project, count)
            log(f"populating project {args.project} to {count:,} instances")
            done = populate.populate(count, socket_path=args.socket, project=args.project)
            populated.append(dataclasses.asdict(done))
            log(f"populated in {done.seconds:.1f} s; ListInstances")
            n = reps["fast"] if count < 5000 else reps["big_list"]
            rows.append(scenarios.list_pool(bench, n, count))
        if not args.keep_population:
            log(f"deleting the population of project {args.project}")
            populate.clean(socket_path=args.socket, project=args.project)
        meta["lxd_fds_after"] = daemon_fds(args.socket)
        meta["seconds"] = round(time.monotonic() - started, 1)
    rows.sort(key=lambda r: r.extra.get("instances", 0))
    out.mkdir(parents=True, exist_ok=True)
    report.write_markdown(out / "commands.md", meta, rows, tail)
    report.write_json(out / "commands.json", meta, rows + tail)
    if not report.plot_list_scaling(out / "list_scaling.png", rows):
        log("matplotlib is not installed: no list_scaling.png (pip install matplotlib)")
    log(f"{wrote(out / 'commands.md')} in {meta['seconds']} s")


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, 100 instances")
    parser.add_argument("--out", type=Path, help="results directory (default: benches/results)")
    parser.add_argument("--provider", help="console script to run (default: next to python)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    parser.add_argument(
        "--project", help="LXD project (default: bench, or bench-quick with --quick)"
    )
    parser.add_argument(
        "--counts",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[100, 1000, 5000],
        help="population sizes for ListInstances (default 100,1000,5000)",
    )
    parser.add_argument("--remove-all-size", type=int, default=200)
    parser.add_argument(
        "--keep-population", action="store_true", help="leave the instances for the next run"
    )
    args = parser.parse_args()
    args.project = args.project or (f"{populate.PROJECT}-quick" if args.quick else populate.PROJECT)
    if not Path(args.socket).exists():
        log(f"no LXD socket at {args.socket}: run tests/env/lxd-up.sh first")
        return 2
    if args.out is not None:
        run(args, args.out)
    elif args.quick:
        with tempfile.TemporaryDirectory(prefix=QUICK_PREFIX) as tmp:
            run(args, Path(tmp))
    else:
        run(args, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
