"""What [diagnostics] costs: the command record's write, and a healthy runner's DeleteInstance.

    .venv/bin/python benches/bench_diagnostics.py [--reps N] [--deletes N]

1. the record's line built and appended (in-process, the code path a command runs), median of
   2,000;
2. whole processes: GetVersion (reads no config: never recorded), ValidatePoolInfo (config and
   record, no LXD request) and ListInstances of an empty pool, with and without command_log,
   runs interleaved, medians;
3. the post-mortem check alone on a healthy runner (in-process): what a healthy delete adds;
4. DeleteInstance of a busybox runner whose cloud-init output says `idle` (healthy: nothing is
   saved) and of one whose output says `failed` (a post-mortem is saved), with and without
   postmortem_dir, interleaved, medians.

    .venv/bin/python benches/bench_diagnostics.py --sftp [--socket S] [--rounds N] [--cold N]
        [--pairs N] [--baseline OTHER/bin/garm-provider-lxd]

5. the one read a healthy delete adds, both ways, on one running busybox runner's healthy
   cloud-init output: the file API GET the post-mortem check used to send (4 MiB bound) against
   the SFTP tail read it sends now (lstat, open, fstat, read, close on an upgraded connection),
   with LXD's GET of the instance as a yardstick; interleaved (the order turns each round),
   medians and spread of N rounds; and the first read of a fresh runner (LXD starts the
   instance's file server for it, as in a real delete), one way or the other in turn, on
   --cold new runners;
6. whole-process DeleteInstance of healthy busybox runners in A/B pairs: two runners made
   alike (the output written from inside, so a file read is the instance's first file
   request, as in production, and printed on the console as cloud-init prints it: the
   post-mortem check decides from the console), one deleted without postmortem_dir and one
   with (the order turns each round); the median of the paired differences and its spread.
   With --baseline, a third runner each round is deleted by another build with postmortem_dir
   set.

Prints one JSON object. The test daemon is shared: run it when it is quiet, and compare medians.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testdata"))

from garm_harness import bootstrap_payload, garm_env, socket_config
from lxdapi import DEFAULT_SOCKET
from proc import find_script, median, percentile

from garm_provider_lxd.command_log import CommandRecord, append_line
from garm_provider_lxd.config import parse_config

LOG = "/var/log/cloud-init-output.log"
HEALTHY = b"garm-runner-status: installing: x\ngarm-runner-status: idle: runner installed\n"
FAILED = b"garm-runner-status: failed: failed to download tools\n"
FINAL_STAGE = "\"Cloud-init v. 22.4.2 running 'modules:final' at Mon, 07 Dec 2026 04:14:30 +0000.\""
# GetVersion reads no config (never recorded); ValidatePoolInfo reads the config and writes the
# record but sends no request (the record's whole cost, without LXD's noise); ListInstances
# is a real LXD command.
COMMANDS = ("GetVersion", "ValidatePoolInfo", "ListInstances")


def record_write(directory: Path, reps: int) -> dict[str, float]:
    """Median microseconds of building the line, and of building and appending it."""
    log = directory / "micro.log"
    config = parse_config(
        f'unix_socket_path = "/s"\n[diagnostics]\ncommand_log = "{log}"\n'.encode()
    )
    env = {"GARM_CONTROLLER_ID": "c", "GARM_POOL_ID": "p", "GARM_INSTANCE_ID": "runner-1"}
    build, write = [], []
    for _ in range(reps):
        began = time.perf_counter()
        record = CommandRecord(config, env, "DeleteInstance", "v0.1.1")
        line = record.line(0, "")
        built = time.perf_counter()
        append_line(str(log), line, config)
        done = time.perf_counter()
        build.append(built - began)
        write.append(done - began)
    return {"build_us": median(build) * 1e6, "build_and_append_us": median(write) * 1e6}


def run(script: Path, env: dict[str, str], stdin: bytes = b"") -> tuple[float, int]:
    began = time.perf_counter()
    done = subprocess.run([str(script)], env=env, input=stdin, capture_output=True, check=False)
    return time.perf_counter() - began, done.returncode


def whole_process(script: Path, directory: Path, reps: int) -> dict[str, Any]:
    """Median wall of GetVersion and ListInstances without and with the command log."""
    plain = socket_config(directory / "plain.toml", DEFAULT_SOCKET)
    logged = directory / "logged.toml"
    logged.write_text(
        plain.read_text() + f'\n[diagnostics]\ncommand_log = "{directory}/commands.log"\n'
    )
    times: dict[str, list[float]] = {}
    for _ in range(reps):
        for command in COMMANDS:
            for name, config in (("off", plain), ("on", logged)):
                env = garm_env(command, config, "bench-diag", pool_id="no-such-pool")
                wall, code = run(script, env)
                assert code == 0, (command, name)
                times.setdefault(f"{command} {name}", []).append(wall)
    out: dict[str, Any] = {key: round(median(v) * 1000, 2) for key, v in times.items()}
    for command in COMMANDS:
        out[f"{command} delta_ms"] = round(out[f"{command} on"] - out[f"{command} off"], 2)
    return {"median_ms": out, "reps": reps}


def deletes(script: Path, directory: Path, reps: int) -> dict[str, Any]:
    """Median DeleteInstance wall of healthy and failed runners, without and with post-mortems."""
    import pylxd

    client = pylxd.Client(endpoint=DEFAULT_SOCKET, timeout=60)
    plain = socket_config(directory / "plain-delete.toml", DEFAULT_SOCKET)
    pm = directory / "postmortems.toml"
    pm.write_text(plain.read_text() + f'\n[diagnostics]\npostmortem_dir = "{directory}/pm"\n')
    controller = f"bench-diag-{uuid.uuid4().hex[:8]}"
    times: dict[str, list[float]] = {}
    try:
        for _ in range(reps):
            for kind, log in (("healthy", HEALTHY), ("failed", FAILED)):
                for name, config in (("off", plain), ("on", pm)):
                    wall = _create_and_delete(script, client, config, controller, log)
                    times.setdefault(f"{kind} {name}", []).append(wall)
                    print(f"delete {kind} {name}: {wall:.3f} s", file=sys.stderr)
    finally:
        for instance in client.instances.all(recursion=1):
            if instance.config.get("user.runner-controller-id") == controller:
                if instance.status != "Stopped":
                    instance.stop(force=True, wait=True)
                instance.delete(wait=True)
    out: dict[str, Any] = {key: round(median(v) * 1000, 1) for key, v in times.items()}
    for kind in ("healthy", "failed"):
        out[f"{kind} ratio"] = round(out[f"{kind} on"] / out[f"{kind} off"], 3)
        out[f"{kind} delta_ms"] = round(out[f"{kind} on"] - out[f"{kind} off"], 1)
    samples = {key: [round(v * 1000) for v in values] for key, values in times.items()}
    return {"median_ms": out, "reps": reps, "samples_ms": samples}


def healthy_check(script: Path, directory: Path, reps: int) -> dict[str, Any]:
    """Median milliseconds of the post-mortem check alone on one healthy runner (in-process)."""
    import pylxd

    from garm_provider_lxd.lxd import Lxd
    from garm_provider_lxd.postmortem import inspect_before_delete

    client = pylxd.Client(endpoint=DEFAULT_SOCKET, timeout=60)
    config_path = socket_config(directory / "check.toml", DEFAULT_SOCKET)
    config_path.write_text(
        config_path.read_text() + f'\n[diagnostics]\npostmortem_dir = "{directory}/check-pm"\n'
    )
    config = parse_config(config_path.read_bytes())
    controller = f"bench-diag-{uuid.uuid4().hex[:8]}"
    runner = f"bench-diag-{uuid.uuid4().hex[:10]}"
    boot = bootstrap_payload(runner)
    env = garm_env("CreateInstance", config_path, controller, pool_id=boot["pool_id"])
    _, code = run(script, env, json.dumps(boot).encode())
    assert code == 0, "create failed"
    warnings: list[str] = []
    try:
        files = client.instances.get(runner).files
        files.mk_dir("/var/log")
        files.put(LOG, HEALTHY)
        lxd = Lxd(config)
        meta = {"status": "Running", "config": {}}
        first, times = 0.0, []
        for index in range(reps + 1):
            began = time.perf_counter()
            inspect_before_delete(lxd, runner, meta, config, warnings.append)
            elapsed = time.perf_counter() - began
            if index == 0:
                first = elapsed  # LXD starts the instance's file server on the first request
            else:
                times.append(elapsed)
    finally:
        run(script, garm_env("DeleteInstance", config_path, controller, instance_id=runner))
    assert not warnings and not (directory / "check-pm").exists(), warnings
    return {"first_ms": round(first * 1000, 1), "median_ms": round(median(times) * 1000, 2),
            "reps": reps}  # fmt: skip


# A healthy runner's cloud-init output as the default install script leaves it (the shape of
# an e2e runner's, 3.5 KB there), padded with cloud-init lines to about 6 KB.
HEALTHY_FULL = (
    b"".join(b"Cloud-init v. 22.4.2 running 'modules:config' at Mon, 07 Dec 2026 03:00:%02d +0000."
             b" Up 4.%02d seconds.\n" % (i % 60, i % 100) for i in range(40))
    + b"garm-runner-status: installing: downloading tools from https://example.invalid/r.tgz\n"
    + b"garm-runner-status: installing: configuring runner\n"
    + b"".join(b"runner config line %03d: ok\n" % i for i in range(60))
    + b"garm-runner-status: idle: runner successfully installed\n"
    + b"Cloud-init v. 22.4.2 finished at Mon, 07 Dec 2026 03:01:02 +0000. Up 12.5 seconds\n"
)  # fmt: skip


def _spread(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    """Median, p10, p90, min and max of values (seconds), in milliseconds by default."""
    ordered = sorted(values)
    return {
        "median": round(median(ordered) * scale, 3),
        "p10": round(percentile(ordered, 10) * scale, 3),
        "p90": round(percentile(ordered, 90) * scale, 3),
        "min": round(ordered[0] * scale, 3),
        "max": round(ordered[-1] * scale, 3),
        "n": len(ordered),
    }


def _runner(
    script: Path, config: Path, controller: str, log: bytes, socket: str, *, by_exec: bool = False
) -> str:
    """A running busybox runner created as GARM creates one, with this cloud-init output.

    by_exec writes the output with `lxc exec` (as cloud-init would, from inside), so that the
    first file request to the instance is the reader's own: LXD starts the instance's file
    server for it, as in a real delete; and prints it on the console after the line that
    starts cloud-init's final stage, as cloud-init does in a container.
    """
    import os

    import pylxd

    runner = f"bench-diag-{uuid.uuid4().hex[:10]}"
    boot = bootstrap_payload(runner)
    env = garm_env("CreateInstance", config, controller, pool_id=boot["pool_id"])
    _, code = run(script, env, json.dumps(boot).encode())
    assert code == 0, "create failed"
    if by_exec:
        lxc_env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LXD_DIR": os.path.dirname(socket)}
        write = f"mkdir -p /var/log && {{ echo {FINAL_STAGE}; tee {LOG}; }} > /dev/console"
        command = ["lxc", "exec", runner, "--", "sh", "-c", write]
        subprocess.run(command, input=log, env=lxc_env, check=True, timeout=300)
        return runner
    files = pylxd.Client(endpoint=socket, timeout=60).instances.get(runner).files
    files.mk_dir("/var/log")  # busybox has none
    files.put(LOG, log)
    return runner


def read_both_ways(
    script: Path, directory: Path, socket: str, rounds: int, cold: int
) -> dict[str, Any]:
    """The old file API GET against the SFTP tail read of one healthy log, interleaved."""
    from garm_provider_lxd.lxd import REGULAR_FILE, Lxd, api_path, quote
    from garm_provider_lxd.postmortem import LOG_TAIL_BYTES, POSTMORTEM_SECONDS

    config_path = socket_config(directory / "reads.toml", socket)
    config = parse_config(config_path.read_bytes())
    controller = f"bench-diag-{uuid.uuid4().hex[:8]}"
    runner = _runner(script, config_path, controller, HEALTHY_FULL, socket)
    lxd = Lxd(config)
    files = lxd.path(f"{api_path('instances', runner)}/files?path={quote(LOG)}")
    instance = lxd.path(api_path("instances", runner))

    def file_get() -> None:
        status, body = lxd.read_bounded(files, 4 << 20, 5.0)
        assert (status, body) == (200, HEALTHY_FULL), status

    def sftp_tail() -> None:
        found = lxd.read_file_tail(runner, LOG, LOG_TAIL_BYTES, POSTMORTEM_SECONDS)
        assert found == (REGULAR_FILE, HEALTHY_FULL, len(HEALTHY_FULL)), found[0]

    def instance_get() -> None:
        assert lxd.raw("GET", instance)[0] == 200

    ways = {"file_get": file_get, "sftp_tail": sftp_tail, "instance_get": instance_get}
    times: dict[str, list[float]] = {name: [] for name in ways}
    differences = []
    try:
        for way in ways.values():
            way()  # LXD starts the instance's file server on the first file request
        order = list(ways)
        for index in range(rounds):
            took = {}
            for name in order[index % 3 :] + order[: index % 3]:
                began = time.perf_counter()
                ways[name]()
                took[name] = time.perf_counter() - began
                times[name].append(took[name])
            differences.append(took["sftp_tail"] - took["file_get"])
    finally:
        run(script, garm_env("DeleteInstance", config_path, controller, instance_id=runner))
    out: dict[str, Any] = {name: _spread(values) for name, values in times.items()}
    out["sftp_minus_file_get"] = _spread(differences)
    out["log_bytes"] = len(HEALTHY_FULL)
    out["rounds"] = rounds
    firsts: dict[str, list[float]] = {"file_get_first": [], "sftp_tail_first": []}
    for index in range(cold):
        fresh = _runner(script, config_path, controller, HEALTHY_FULL, socket, by_exec=True)
        try:
            if index % 2:
                began = time.perf_counter()
                status, body = lxd.read_bounded(
                    lxd.path(f"{api_path('instances', fresh)}/files?path={quote(LOG)}"),
                    4 << 20,
                    5.0,
                )
                firsts["file_get_first"].append(time.perf_counter() - began)
                assert (status, body) == (200, HEALTHY_FULL), status
            else:
                began = time.perf_counter()
                found = lxd.read_file_tail(fresh, LOG, LOG_TAIL_BYTES, POSTMORTEM_SECONDS)
                firsts["sftp_tail_first"].append(time.perf_counter() - began)
                assert found[0] == REGULAR_FILE, found[0]
        finally:
            run(script, garm_env("DeleteInstance", config_path, controller, instance_id=fresh))
    out.update({name: _spread(values) for name, values in firsts.items() if values})
    return out


def paired_deletes(
    script: Path, directory: Path, socket: str, pairs: int, baseline: Path | None
) -> dict[str, Any]:
    """Whole DeleteInstance of alike healthy runners, without and with postmortem_dir.

    With baseline (another build's console script, e.g. the previous release), each round
    also deletes a third runner with it and postmortem_dir set ("on_baseline").
    """
    plain = socket_config(directory / "pair-plain.toml", socket)
    pm = directory / "pair-pm.toml"
    pm.write_text(plain.read_text() + f'\n[diagnostics]\npostmortem_dir = "{directory}/pair-pm"\n')
    controller = f"bench-diag-{uuid.uuid4().hex[:8]}"
    variants = {"off": (script, plain), "on": (script, pm)}
    if baseline:
        variants["on_baseline"] = (baseline, pm)
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        for index in range(pairs):
            runners = {name: _runner(script, plain, controller, HEALTHY_FULL, socket,
                                     by_exec=True) for name in names}  # fmt: skip
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                provider, config = variants[name]
                env = garm_env("DeleteInstance", config, controller, instance_id=runners[name])
                took, code = run(provider, env)
                assert code == 0, f"delete ({name}) failed with exit code {code}"
                times[name].append(took)
            shown = ", ".join(f"{name} {times[name][-1]:.3f} s" for name in names)
            print(f"round {index}: {shown}", file=sys.stderr)
    finally:  # what a failed round left
        run(script, garm_env("RemoveAllInstances", plain, controller))
    assert not (directory / "pair-pm").exists(), "a healthy runner left a post-mortem"
    out: dict[str, Any] = {f"{name}_ms": _spread(times[name]) for name in names}
    for name in names[1:]:
        differences = [a - b for a, b in zip(times[name], times["off"], strict=True)]
        out[f"{name}_minus_off_ms"] = _spread(differences)
        out[f"{name}_minus_off_samples_ms"] = [round(d * 1000, 1) for d in differences]
    if baseline:
        differences = [a - b for a, b in zip(times["on"], times["on_baseline"], strict=True)]
        out["on_minus_on_baseline_ms"] = _spread(differences)
    out["rounds"] = pairs
    return out


def _create_and_delete(
    script: Path, client: Any, config: Path, controller: str, log: bytes
) -> float:
    """Create a busybox runner, give it this cloud-init output, and time its DeleteInstance."""
    runner = f"bench-diag-{uuid.uuid4().hex[:10]}"
    boot = bootstrap_payload(runner)
    env = garm_env("CreateInstance", config, controller, pool_id=boot["pool_id"])
    _, code = run(script, env, json.dumps(boot).encode())
    assert code == 0, "create failed"
    files = client.instances.get(runner).files
    files.mk_dir("/var/log")  # busybox has none
    files.put(LOG, log)
    wall, code = run(script, garm_env("DeleteInstance", config, controller, instance_id=runner))
    assert code == 0, "delete failed"
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="whole-process runs per variant")
    parser.add_argument("--deletes", type=int, default=8, help="deletes per variant (0: none)")
    parser.add_argument("--sftp", action="store_true", help="only 5 and 6: the log read")
    parser.add_argument("--socket", default=DEFAULT_SOCKET, help="LXD socket for 5 and 6")
    parser.add_argument("--rounds", type=int, default=40, help="rounds of 5")
    parser.add_argument("--cold", type=int, default=20, help="fresh runners of 5's first read")
    parser.add_argument("--pairs", type=int, default=20, help="delete rounds of 6 (0: none)")
    parser.add_argument("--baseline", help="another build's console script: a third variant of 6")
    options = parser.parse_args()
    script = find_script()
    if options.sftp:
        result: dict[str, Any]
        with tempfile.TemporaryDirectory() as tmp:
            result = {"socket": options.socket}
            if options.rounds:
                reads = read_both_ways(
                    script, Path(tmp), options.socket, options.rounds, options.cold
                )
                print(json.dumps({"reads_ms": reads}, indent=2), flush=True)
                result["reads_ms"] = reads
            if options.pairs:
                baseline = Path(options.baseline) if options.baseline else None
                result["delete_pairs"] = paired_deletes(
                    script, Path(tmp), options.socket, options.pairs, baseline
                )
        print(json.dumps(result, indent=2))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        result = {
            "record": record_write(directory, 2000),
            "commands": whole_process(script, directory, options.reps),
            "healthy_check": healthy_check(script, directory, 20),
        }
        if options.deletes:
            result["deletes"] = deletes(script, directory, options.deletes)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
