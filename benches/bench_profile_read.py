"""What the pool policy's profile read adds to CreateInstance, on the test LXD.

    python benches/bench_profile_read.py            # 30 rounds of requests, 6 creates per case
    python benches/bench_profile_read.py --quick    # 5 and 2, results to a temp dir
    python benches/bench_profile_read.py --rounds 60 --creates 0   # the requests alone

The policy reads every profile a pool chose with one `GET /1.0/profiles/<name>` (Lxd.get_profile,
the provider's own request). LXD renders the profile's `used_by` (every instance using it) into
that answer, so the bench reads a fresh profile nobody uses and the `default` profile with
whatever population the daemon has, next to the two listings the provider could have used
instead. Then whole CreateInstance runs, as GARM starts them, with the flavor judged (read) and
with it listed in allow_profiles (not read), taking turns. Writes results/profile_read.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from garm_provider_lxd._native import LxdTransport
from garm_provider_lxd.config import Config
from garm_provider_lxd.lxd import Lxd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testdata"))

from garm_harness import bootstrap_payload, garm_env, run_provider, socket_config
from lxdapi import DEFAULT_SOCKET
from proc import find_script, median

RESULTS = Path(__file__).resolve().parent / "results"


def timed_ms(action: Callable[[], object]) -> float:
    """Wall time of one call in milliseconds."""
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000


def request_rows(lxd: Lxd, transport: LxdTransport, fresh: str, rounds: int) -> list[str]:
    """Median wall time of each way to learn a profile's contents, taking turns each round."""
    users = len((lxd.get_profile("default") or {}).get("used_by") or [])
    cases: dict[str, Callable[[], object]] = {
        f"GET /1.0/profiles/{fresh} (used by 0 instances): the provider's read": lambda: (
            lxd.get_profile(fresh)
        ),
        f"GET /1.0/profiles/default (used by {users:,} instances): the provider's read": lambda: (
            lxd.get_profile("default")
        ),
        "GET /1.0/profiles (names only)": lambda: transport.request(
            "GET", "/1.0/profiles", None, None
        ),
        "GET /1.0/profiles?recursion=1 (every profile)": lambda: transport.request(
            "GET", "/1.0/profiles?recursion=1", None, None
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, action in cases.items():
            times[name].append(timed_ms(action))
    return [f"| {name} | {rounds} | {median(times[name]):.1f} ms |" for name in cases]


def create_ms(script: str, config: Path, flavor: str, controller: str) -> float:
    """Wall time of one CreateInstance (no address wait) with this flavor; the instance stays."""
    name = f"garm-bench-{uuid.uuid4().hex[:10]}"
    boot = bootstrap_payload(name, flavor=flavor)
    env = garm_env("CreateInstance", config, controller, pool_id=boot["pool_id"])
    began = time.perf_counter()
    done = run_provider(script, env, json.dumps(boot).encode(), timeout=300)
    elapsed = (time.perf_counter() - began) * 1000
    if done.returncode != 0:
        raise SystemExit(f"CreateInstance failed: {done.stderr.decode(errors='replace')}")
    return elapsed


def create_rows(script: str, workdir: Path, flavor: str, users: int, reps: int) -> list[str]:
    """CreateInstance with the flavor judged and with it trusted, taking turns."""
    judged = socket_config(workdir / "judged.toml", DEFAULT_SOCKET, address_wait_seconds=0)
    trusted = socket_config(workdir / "trusted.toml", DEFAULT_SOCKET, address_wait_seconds=0)
    trusted.write_text(trusted.read_text() + f'\n[pool_policy]\nallow_profiles = ["{flavor}"]\n')
    controller = str(uuid.uuid4())
    times: dict[str, list[float]] = {"judged": [], "trusted": []}
    try:
        for _ in range(reps):
            times["judged"].append(create_ms(script, judged, flavor, controller))
            times["trusted"].append(create_ms(script, trusted, flavor, controller))
    finally:
        remove = garm_env("RemoveAllInstances", judged, controller)
        run_provider(script, remove, b"", timeout=600)
    delta = median(times["judged"]) - median(times["trusted"])
    return [
        f"| CreateInstance, flavor {flavor} (used by {users:,}) judged (read) | {reps} | "
        f"{median(times['judged']):.0f} ms |",
        f"| CreateInstance, flavor {flavor} in allow_profiles (not read) | {reps} | "
        f"{median(times['trusted']):.0f} ms (difference of medians: {delta:+.0f} ms) |",
    ]


def main() -> int:
    """Run the measurements and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, help="rounds of requests (default 30)")
    parser.add_argument("--creates", type=int, help="creates per case, 0 for none (default 6)")
    args = parser.parse_args()
    rounds, reps = (5, 2) if args.quick else (30, 6)
    rounds = rounds if args.rounds is None else args.rounds
    reps = reps if args.creates is None else args.creates
    out = Path(tempfile.mkdtemp()) if args.quick else RESULTS
    lxd = Lxd(Config(unix_socket_path=DEFAULT_SOCKET))
    transport = LxdTransport(unix_socket=DEFAULT_SOCKET, timeout=30.0)
    fresh = f"garm-bench-{uuid.uuid4().hex[:8]}"
    lxd.call("POST", "/1.0/profiles", {"name": fresh, "config": {}, "devices": {}})
    try:
        rows = request_rows(lxd, transport, fresh, rounds)
        users = len((lxd.get_profile("default") or {}).get("used_by") or [])
        if reps:
            with tempfile.TemporaryDirectory() as workdir:
                script = str(find_script())
                rows += create_rows(script, Path(workdir), "default", users, reps)
    finally:
        lxd.call("DELETE", f"/1.0/profiles/{fresh}")
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    version = lxd.server().get("environment", {}).get("server_version", "?")
    text = "\n".join(
        [
            "# The pool policy's profile read at create",
            "",
            f"Measured {when} on LXD {version} (the shared test daemon); medians.",
            "",
            "| what | n | wall p50 |",
            "|---|--:|--:|",
            *rows,
            "",
        ]
    )
    (out / "profile_read.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
