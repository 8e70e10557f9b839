"""CreateInstance killed with SIGKILL (as GARM does at its timeout), then GARM's delete, retry."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from reliability.faultproxy import Fault, FaultProxy
from reliability.harness import (
    Outcome,
    Provider,
    garm_env,
    instance_names,
    one_line_failure,
    settle,
    socket_config,
    tagged,
)

pytestmark = pytest.mark.reliability
pytest_plugins = ["reliability.fixtures"]

# Bounds waiting for the provider to reach a kill point; never a performance assertion.
REACH_DEADLINE = 120.0
WAIT = r"^/1\.0/operations/[^/]+/wait"
OPERATIONS = r"^/1\.0/operations\?"
# (fault that stops the provider there, method, path pattern, matching requests let through)
KILL_POINTS = {
    "before-any-request": (Fault.HANG, "GET", r"^/1\.0(\?|$)", 0),
    "create-not-yet-sent": (Fault.HANG, "POST", r"^/1\.0/instances(\?|$)", 0),
    "create-accepted": (Fault.HOLD, "POST", r"^/1\.0/instances(\?|$)", 0),
    "create-operation-done": (Fault.HOLD, "GET", WAIT, 0),
    "start-not-yet-sent": (Fault.HANG, "PUT", r"/state(\?|$)", 0),
    "start-operation-done": (Fault.HOLD, "GET", WAIT, 1),
    "address-poll": (Fault.HOLD, "GET", r"^/1\.0/instances/[^/?]+(/state)?(\?|$)", 1),
}
# Kill points that exist only where the start is a request of its own: a server with
# `instance_create_start` starts the instance within the create operation.
SEPARATE_START_POINTS = ("start-not-yet-sent", "start-operation-done")
RANDOM_KILLS = 4
RANDOM_SEED = 20240611


def _start_create(provider_bin: str, config: Path, controller: str, boot: dict[str, Any]) -> Any:
    env = garm_env("CreateInstance", config, controller, pool_id=boot["pool_id"])
    # The payload fits a pipe buffer: write it all, close, and hand the read end over.
    read_end, write_end = os.pipe()
    os.write(write_end, json.dumps(boot).encode())
    os.close(write_end)
    try:
        return subprocess.Popen(
            [provider_bin], stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
    finally:
        os.close(read_end)


def _extensions(lxd_client: Any) -> set[str]:
    return set(lxd_client.host_info.get("api_extensions") or ())


def _kill(proc: Any) -> int:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    return int(proc.returncode)


def _garm_recovers(
    provider: Provider, config: Path, boot: dict[str, Any], lxd_client: Any, controller: str
) -> None:
    """GARM after a failed create: DeleteInstance(name), then the same create again."""
    name = boot["name"]
    deleted = provider("DeleteInstance", config, name=name)
    assert deleted.returncode == 0, deleted.error
    # Nothing left, and nothing that LXD was still creating turns up afterwards.
    settle(lxd_client)
    assert name not in tagged(lxd_client, controller)
    again = provider("CreateInstance", config, boot=boot)
    assert again.returncode == 0, again.error
    assert again.json()["name"] == name
    assert again.json()["status"] == "running"
    assert provider("DeleteInstance", config, name=name).returncode == 0
    assert tagged(lxd_client, controller) == {}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_create_killed_at_each_step_converges(
    provider_bin: str,
    provider: Provider,
    proxy_config: Path,
    direct_config: Path,
    fault_proxy: FaultProxy,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
    point: str,
) -> None:
    if point in SEPARATE_START_POINTS and "instance_create_start" in _extensions(lxd_client):
        pytest.skip("this server starts the instance within the create: no separate start")
    fault, method, path, skip = KILL_POINTS[point]
    rule = fault_proxy.add(fault, method, path, skip=skip, times=1)
    boot = bootstrap(f"garm-kill-{uuid.uuid4().hex[:8]}")
    proc = _start_create(provider_bin, proxy_config, controller, boot)
    try:
        assert rule.hit.wait(REACH_DEADLINE), f"the create never reached {point}"
    finally:
        code = _kill(proc)
    assert code == -signal.SIGKILL
    fault_proxy.clear()
    _garm_recovers(provider, direct_config, boot, lxd_client, controller)


def test_create_killed_at_random_moments_converges(
    provider_bin: str,
    provider: Provider,
    direct_config: Path,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
) -> None:
    rng = random.Random(RANDOM_SEED)
    for _ in range(RANDOM_KILLS):
        boot = bootstrap(f"garm-kill-{uuid.uuid4().hex[:8]}")
        proc = _start_create(provider_bin, direct_config, controller, boot)
        time.sleep(rng.uniform(0.05, 2.5))
        code = _kill(proc)
        # A create that finished before the signal is fine; GARM deletes and retries anyway.
        assert code in (0, -signal.SIGKILL), code
        _garm_recovers(provider, direct_config, boot, lxd_client, controller)


# Attempts at catching the create operation still running when GARM's delete arrives; it
# usually is (creating from the image takes longer than starting the provider), so a
# provider that cannot delete an instance busy with its create fails within a few attempts.
BUSY_ATTEMPTS = 5


def test_delete_right_after_a_killed_create_waits_for_the_running_operation(
    provider_bin: str,
    provider: Provider,
    proxy_config: Path,
    direct_config: Path,
    fault_proxy: FaultProxy,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
) -> None:
    for _ in range(BUSY_ATTEMPTS):
        fault, method, path, skip = KILL_POINTS["create-accepted"]
        rule = fault_proxy.add(fault, method, path, skip=skip, times=1)
        boot = bootstrap(f"garm-busy-{uuid.uuid4().hex[:8]}")
        proc = _start_create(provider_bin, proxy_config, controller, boot)
        try:
            assert rule.hit.wait(REACH_DEADLINE), "the create request never reached LXD"
        finally:
            _kill(proc)
        # LXD is still creating the instance; GARM deletes it at once.
        deleted = provider("DeleteInstance", direct_config, name=boot["name"])
        assert deleted.returncode == 0, deleted.error
        settle(lxd_client)
        assert tagged(lxd_client, controller) == {}
        fault_proxy.clear()


def _delete_while_lxd_creates(
    provider_bin: str,
    provider: Provider,
    fault_proxy: FaultProxy,
    config: Path,
    owner: str,
    boot: dict[str, Any],
) -> Outcome:
    """Kill a create of owner's, then run GARM's delete so that it gets 404 while LXD creates.

    The window: the delete asks for the instance while LXD runs the killed create but has not
    yet written the instance to its database, so the answer is 404; the instance appears a
    moment later. The proxy cannot pause LXD's own operation, so it orders the requests
    instead, which makes the window certain: the create's POST (written out before the kill)
    reaches LXD only after LXD answered the delete's look-up, and that 404 is handed to the
    delete only once LXD has accepted the create, so its operation runs (or has just ended)
    when the delete goes on.
    """
    name = boot["name"]
    create = fault_proxy.add(Fault.HOLD_REQUEST, "POST", r"^/1\.0/instances(\?|$)", times=1)
    proc = _start_create(provider_bin, config, owner, boot)
    try:
        assert create.hit.wait(REACH_DEADLINE), "the create request never reached the proxy"
    finally:
        assert _kill(proc) == -signal.SIGKILL
    lookup = fault_proxy.add(Fault.HOLD, "GET", rf"^/1\.0/instances/{name}(\?|$)", times=1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        deleting = pool.submit(provider, "DeleteInstance", config, name=name)
        assert lookup.hit.wait(60), "DeleteInstance never looked the instance up"
        create.release.set()
        assert create.answered.wait(60), "LXD never answered the create request"
        lookup.release.set()
        return deleting.result(timeout=300)


@pytest.mark.parametrize("creator", ["same-controller", "other-controller"])
def test_delete_that_finds_nothing_while_lxd_is_still_creating_leaves_no_ghost(
    provider_bin: str,
    provider: Provider,
    fault_proxy: FaultProxy,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
    other_controller: str,
    tmp_path: Path,
    creator: str,
) -> None:
    # GARM-like deadlines through the proxy. A create of another controller's is left alone.
    config = socket_config(tmp_path / "proxy-garm.toml", fault_proxy.path, address_wait_seconds=3)
    owner = controller if creator == "same-controller" else other_controller
    boot = bootstrap(f"garm-kill-{uuid.uuid4().hex[:8]}")
    deleted = _delete_while_lxd_creates(provider_bin, provider, fault_proxy, config, owner, boot)
    assert deleted.returncode == 0, deleted.error
    # Once LXD's create operation has ended, nothing of that name exists (or the other
    # controller's instance, untouched).
    settle(lxd_client)
    assert tagged(lxd_client, controller) == {}
    if owner == controller:
        assert boot["name"] not in instance_names(lxd_client)
    else:
        assert list(tagged(lxd_client, other_controller)) == [boot["name"]]


def test_delete_that_outwaits_its_deadline_on_a_create_fails_and_the_retry_deletes(
    provider_bin: str,
    provider: Provider,
    proxy_config: Path,
    fault_proxy: FaultProxy,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
) -> None:
    # The create operation reads as running until the delete's deadline (6 s here): the delete
    # must not report success (GARM would forget the instance), but fail so that GARM retries.
    fault_proxy.add(Fault.STALL_OPERATION, "GET", WAIT, times=-1)
    boot = bootstrap(f"garm-kill-{uuid.uuid4().hex[:8]}")
    deleted = _delete_while_lxd_creates(
        provider_bin, provider, fault_proxy, proxy_config, controller, boot
    )
    line = one_line_failure(deleted)
    assert re.search(r"Creating instance on \S+: LXD operation did not finish within 6s", line)
    fault_proxy.clear()
    settle(lxd_client)
    again = provider("DeleteInstance", proxy_config, name=boot["name"])
    assert again.returncode == 0, again.error
    assert boot["name"] not in instance_names(lxd_client)


def test_delete_reads_operations_only_when_it_finds_nothing(
    provider: Provider,
    proxy_config: Path,
    direct_config: Path,
    fault_proxy: FaultProxy,
    bootstrap: Callable[..., dict[str, Any]],
) -> None:
    # The usual delete (the instance is there) costs no more requests than before the check.
    boot = bootstrap(f"garm-kill-{uuid.uuid4().hex[:8]}")
    assert provider("CreateInstance", direct_config, boot=boot).returncode == 0
    assert provider("DeleteInstance", proxy_config, name=boot["name"]).returncode == 0
    listings = [path for _, path in fault_proxy.requests if re.match(OPERATIONS, path)]
    assert listings == []
    fault_proxy.requests.clear()
    assert provider("DeleteInstance", proxy_config, name=boot["name"]).returncode == 0
    listings = [path for _, path in fault_proxy.requests if re.match(OPERATIONS, path)]
    assert len(listings) == 1, listings


def test_delete_survives_a_start_that_lands_while_it_deletes(
    provider: Provider,
    proxy_config: Path,
    direct_config: Path,
    fault_proxy: FaultProxy,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
) -> None:
    # GARM deletes right after killing a create whose start LXD is still carrying out, and the
    # start lands in the middle of the delete. Without `instance_force_delete` the delete is a
    # stop then a DELETE: the stop finds the instance stopped and the start lands before the
    # DELETE. With it the delete is one DELETE ?force=true, so there is no such gap: the start
    # lands just before that request reaches the server, which stops and deletes it anyway.
    force_delete = "instance_force_delete" in _extensions(lxd_client)
    boot = bootstrap(f"garm-kill-{uuid.uuid4().hex[:8]}")
    assert provider("CreateInstance", direct_config, boot=boot).returncode == 0
    instance = lxd_client.instances.get(boot["name"])
    instance.stop(force=True, wait=True)
    if force_delete:
        held = fault_proxy.add(Fault.HOLD_REQUEST, "DELETE", r"[?&]force=true", times=1)
    else:
        held = fault_proxy.add(Fault.HOLD, "PUT", r"/state", times=1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        deleting = pool.submit(provider, "DeleteInstance", proxy_config, name=boot["name"])
        assert held.hit.wait(60), f"DeleteInstance never sent the {held.method} it must send"
        instance.start(wait=True)  # the killed create's start, landing late
        held.release.set()
        deleted = deleting.result(timeout=300)
    assert deleted.returncode == 0, deleted.error
    if force_delete:
        assert not [path for method, path in fault_proxy.requests if method == "PUT"]
    settle(lxd_client)
    assert tagged(lxd_client, controller) == {}
