"""Time `garm-provider-lxd status` against a project of N instances (benches/populate.py's shape).

    python benches/bench_status.py 5000           # populate project ops-status to 5,000, time
    python benches/bench_status.py 5000 --clean   # ... then delete every instance again

Run it with the interpreter the provider is installed in (e.g. .venv/bin/python). Prints one
JSON object: the command's wall time (median of --reps runs) for one controller, for every
controller, and the raw listing requests it chooses between (recursion=1 with and without a
server-side filter, recursion=2 with a filter), each checked to find the same instances.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import populate
from lxdapi import DEFAULT_SOCKET, Lxd, with_project
from proc import find_script, median

TAG = "user.runner-controller-id"


def timed(func: Callable[[], object], reps: int) -> tuple[float, object]:
    """Median wall seconds of reps calls, and the last result."""
    times, result = [], None
    for _ in range(reps):
        began = time.monotonic()
        result = func()
        times.append(time.monotonic() - began)
    return median(times), result


def main() -> int:
    """Populate, time, optionally clean; print the numbers as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("--project", default="ops-status")
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--clean", action="store_true", help="delete the population afterwards")
    args = parser.parse_args()
    began = time.monotonic()
    populate.populate(args.count, socket_path=args.socket, project=args.project)
    populated = time.monotonic() - began
    script = str(find_script())
    controller = populate.controller_id(0)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "c.toml"
        config.write_text(f'unix_socket_path = "{args.socket}"\nproject_name = "{args.project}"\n')

        def status(*extra: str) -> list[dict[str, object]]:
            done = subprocess.run(
                [script, "status", "--config", str(config), "--json", *extra],
                capture_output=True, check=True, timeout=600,
            )  # fmt: skip
            result: list[dict[str, object]] = json.loads(done.stdout)
            return result

        one, mine = timed(lambda: status("--controller-id", controller), args.reps)
        every, everyone = timed(status, args.reps)
        lxd = Lxd(args.socket)

        def listing(**query: str) -> list[dict[str, object]]:
            body = lxd.call("GET", with_project("/1.0/instances", args.project, **query))
            return [i for i in body["metadata"] if i["config"].get(TAG) == controller]

        where = f"config.{TAG} eq {controller}"
        raw1, found1 = timed(lambda: listing(recursion="1"), args.reps)
        raw1f, found1f = timed(lambda: listing(recursion="1", filter=where), args.reps)
        raw2f, found2f = timed(lambda: listing(recursion="2", filter=where), 1)
        lxd.close()
    expected = {
        populate.name_of(i)
        for i in range(args.count)
        if (populate.tags_of(i) or ("",))[0] == controller
    }
    for found in (mine, found1, found1f, found2f):
        assert isinstance(found, list) and {str(i["name"]) for i in found} == expected
    result = {
        "instances": args.count,
        "populate_seconds": round(populated, 1),
        "status_one_controller_seconds": round(one, 2),
        "status_one_controller_runners": len(expected),
        "status_all_seconds": round(every, 2),
        "status_all_runners": len(everyone) if isinstance(everyone, list) else 0,
        "list_recursion1_seconds": round(raw1, 2),
        "list_recursion1_filter_seconds": round(raw1f, 2),
        "list_recursion2_filter_seconds": round(raw2f, 2),
    }
    if args.clean:
        populate.clean(socket_path=args.socket, project=args.project)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
