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
from proc import find_script, median

from garm_provider_lxd.command_log import CommandRecord, append_line
from garm_provider_lxd.config import parse_config

LOG = "/var/log/cloud-init-output.log"
HEALTHY = b"garm-runner-status: installing: x\ngarm-runner-status: idle: runner installed\n"
FAILED = b"garm-runner-status: failed: failed to download tools\n"
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
    options = parser.parse_args()
    script = find_script()
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
