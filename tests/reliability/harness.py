"""Running the provider as GARM does, many at once, and checking what it left behind."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pylxd
from conftest import CONTROLLER_ID_KEY
from conftest import bootstrap_payload as bootstrap_payload  # re-exported for the tests
from conftest import garm_env as garm_env  # re-exported for the reliability tests
from garm_harness import run_provider
from garm_harness import socket_config as socket_config  # re-exported for the reliability tests
from garm_harness import write_config as write_config  # re-exported for the reliability tests

# Bounds a hang of a provider the suite expects to finish; never a performance assertion.
PROCESS_DEADLINE = 240.0
PREFIX = "garm-provider-lxd: "
# How long test cleanup waits for an operation a killed or failed create left running.
CLEANUP_DEADLINE = 120.0
# Every instance the suite creates has one of these name prefixes.
NAME_KINDS = ("bad", "busy", "by", "cc", "flt", "keep", "kill", "old", "proc", "race", "sec", "tls")
NAME_PREFIXES = (*(f"garm-{kind}-" for kind in NAME_KINDS), "bystander-")


@dataclass
class Outcome:
    """What one provider process did."""

    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def error(self) -> str:
        """The stderr text."""
        return self.stderr.decode(errors="replace")

    def json(self) -> Any:
        """The stdout, decoded as the one JSON value it must be."""
        return json.loads(self.stdout)


Provider = Callable[..., "Outcome"]


def run(
    provider_bin: str,
    env: Mapping[str, str],
    stdin: bytes = b"",
    *,
    timeout: float = PROCESS_DEADLINE,
    wrapper: Iterable[str] = (),
    args: Iterable[str] = (),
) -> Outcome:
    """Run the provider once with exactly env and stdin (args only for operator commands)."""
    done = run_provider(provider_bin, env, stdin, timeout=timeout, wrapper=wrapper, args=args)
    return Outcome(done.returncode, done.stdout, done.stderr)


def run_many(
    provider_bin: str, jobs: list[tuple[dict[str, str], bytes]], timeout: float = PROCESS_DEADLINE
) -> list[Outcome]:
    """Start every job at once (one process each) and return their outcomes in order."""
    procs = [
        subprocess.Popen(
            [provider_bin],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for env, _ in jobs
    ]
    results: list[Outcome | None] = [None] * len(procs)

    def collect(index: int) -> None:
        proc = procs[index]
        try:
            out, err = proc.communicate(jobs[index][1], timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += b"\n(test: killed at the deadline)"
        results[index] = Outcome(proc.returncode, out, err)

    threads = [threading.Thread(target=collect, args=(i,)) for i in range(len(procs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in results if r is not None]


def one_line_failure(outcome: Outcome, exit_code: int = 1) -> str:
    """Assert a clean failure (exit code, nothing on stdout, one stderr line); return the line."""
    text = outcome.error
    assert outcome.returncode == exit_code, (outcome.returncode, text)
    assert outcome.stdout.strip() == b"", outcome.stdout[:200]
    assert "Traceback" not in text, text
    assert text.count("\n") == 1 and text.endswith("\n"), text
    assert text.startswith(PREFIX), text
    line = text[len(PREFIX) :].strip()
    assert line, "the error line is empty"
    return line


def server_instances(client: Any) -> list[dict[str, Any]]:
    """Every instance of the default project in one consistent listing (recursion=1)."""
    response = client.api.instances.get(params={"recursion": "1"})
    items: list[dict[str, Any]] = response.json()["metadata"]
    return items


def tagged(client: Any, controller_id: str) -> dict[str, dict[str, str]]:
    """Return {name: config} of the server's instances tagged with controller_id."""
    return {
        item["name"]: dict(item.get("config") or {})
        for item in server_instances(client)
        if (item.get("config") or {}).get(CONTROLLER_ID_KEY) == controller_id
    }


def instance_names(client: Any) -> set[str]:
    """Return the names of every instance in the default project."""
    return {item["name"] for item in server_instances(client)}


def remove_instance(client: Any, name: str) -> None:
    """Force-remove one instance (waiting out an operation still running on it); gone is fine."""
    deadline = time.monotonic() + CLEANUP_DEADLINE
    while True:
        try:
            inst = client.instances.get(name)
            if inst.status != "Stopped":
                inst.stop(force=True, wait=True)
            inst.delete(wait=True)
            return
        except pylxd.exceptions.LXDAPIException as exc:
            text = str(exc).lower()
            if "not found" in text:
                return
            if "busy" not in text or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def remove_tagged(client: Any, controller_id: str) -> None:
    """Force-remove every instance tagged with controller_id, once no create of ours runs."""
    # A create the test killed or failed may still be running in LXD, its instance not yet
    # listed; wait for the operations on this suite's instance names to end first.
    settle(client)
    for name in tagged(client, controller_id):
        remove_instance(client, name)


def settle(client: Any) -> None:
    """Wait (bounded) until no LXD operation on an instance of this suite is running."""
    deadline = time.monotonic() + CLEANUP_DEADLINE
    while _running_on_ours(client) and time.monotonic() < deadline:
        time.sleep(0.5)


def _running_on_ours(client: Any) -> bool:
    """Whether an LXD operation on an instance named like this suite's ones is running."""
    listing = client.api.operations.get(params={"recursion": "1"}).json()["metadata"] or {}
    for operation in listing.get("running") or []:
        for url in (operation.get("resources") or {}).get("instances") or []:
            if url.rsplit("/", 1)[-1].split("?")[0].startswith(NAME_PREFIXES):
                return True
    return False


def open_fds_to(pid: int, targets: set[str]) -> list[str]:
    """Return the fds of process pid that point at any of the targets (pipe:[...] names)."""
    found: list[str] = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link in targets:
            found.append(f"{fd}->{link}")
    return found
