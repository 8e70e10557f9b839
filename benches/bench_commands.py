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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import populate
import report
import scenarios
from harness import Bench, Row
from lxdapi import DEFAULT_SOCKET, ensure_project, force_delete, instance_names
from proc import find_script

RESULTS = Path(__file__).resolve().parent / "results"
FULL = {"floor": 20, "fast": 15, "state": 10, "create": 8, "big_list": 7, "rm_reps": 3}
QUICK = {"floor": 3, "fast": 3, "state": 3, "create": 2, "big_list": 2, "rm_reps": 1}


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def machine() -> str:
    """Describe the machine in one phrase."""
    return f"{os.cpu_count()} cores, Linux {platform.release()}"


def run(args: argparse.Namespace, out: Path) -> None:
    """Run every scenario and write the results to out."""
    reps = QUICK if args.quick else FULL
    counts = [100] if args.quick else args.counts
    size = 20 if args.quick else args.remove_all_size
    with tempfile.TemporaryDirectory(prefix="garm-bench-") as workdir:
        bench = Bench(find_script(args.provider), args.socket, args.project, Path(workdir))
        ensure_project(bench.lxd, args.project)
        leftovers = [n for n in instance_names(bench.lxd, args.project) if n.startswith("bc-")]
        for name in leftovers:
            force_delete(bench.lxd, name, args.project)
        version = bench.provider("GetVersion").stdout.decode().strip()
        populated: list[dict[str, object]] = []
        meta: dict[str, object] = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "lxd": bench.server_version,
            "provider_version": version,
            "python": f"{bench.python}",
            "script": str(bench.script),
            "mode": "quick" if args.quick else "full",
            "populate": populated,
        }
        rows: list[Row] = []
        tail: list[Row] = []
        started = time.monotonic()

        def grow(count: int) -> None:
            log(f"populating project {args.project} to {count:,} instances")
            done = populate.populate(count, socket_path=args.socket, project=args.project)
            populated.append(dataclasses.asdict(done))
            log(f"populated in {done.seconds:.1f} s")

        grow(counts[0])
        steps = [
            ("python -c pass", lambda: [scenarios.python_floor(bench, reps["floor"])]),
            ("GetVersion", lambda: [scenarios.get_version(bench, reps["floor"])]),
            ("GetInstance", lambda: [scenarios.get_instance(bench, reps["fast"])]),
            ("Start/StopInstance", lambda: list(scenarios.start_stop(bench, reps["state"]))),
            ("DeleteInstance", lambda: [scenarios.delete_running(bench, reps["state"])]),
            ("CreateInstance", lambda: [scenarios.create(bench, reps["create"], wait=False)]),
            ("CreateInstance+wait", lambda: [scenarios.create(bench, reps["create"], wait=True)]),
            (f"List@{counts[0]}", lambda: [scenarios.list_pool(bench, reps["fast"], counts[0])]),
        ]
        for name, step in steps:
            log(name)
            rows.extend(step())
        log(f"RemoveAllInstances of {size} vs sequential deletes")
        tail = list(scenarios.remove_all(bench, reps["rm_reps"], size))
        for count in counts[1:]:
            grow(count)
            log(f"List@{count}")
            n = reps["fast"] if count < 5000 else reps["big_list"]
            rows.append(scenarios.list_pool(bench, n, count))
        if not args.keep_population:
            log(f"deleting the population of project {args.project}")
            populate.clean(socket_path=args.socket, project=args.project)
        meta["seconds"] = round(time.monotonic() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    report.write_markdown(out / "commands.md", meta, rows, tail)
    report.write_json(out / "commands.json", meta, rows + tail)
    report.plot_list_scaling(out / "list_scaling.png", rows)
    log(f"wrote {out}/commands.md in {meta['seconds']} s")


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, 100 instances")
    parser.add_argument("--out", type=Path, help="results directory (default: benches/results)")
    parser.add_argument("--provider", help="console script to run (default: next to python)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    parser.add_argument("--project", default=populate.PROJECT)
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
    if not Path(args.socket).exists():
        log(f"no LXD socket at {args.socket}: run tests/env/lxd-up.sh first")
        return 2
    if args.out is not None:
        run(args, args.out)
    elif args.quick:
        with tempfile.TemporaryDirectory(prefix="garm-bench-results-") as tmp:
            run(args, Path(tmp))
    else:
        run(args, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
