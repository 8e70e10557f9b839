"""Faults between the provider and the real daemon: bounded, one clear line, recoverable."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LxdEnv
from reliability.faultproxy import Fault, FaultProxy
from reliability.harness import (
    Outcome,
    Provider,
    bootstrap_payload,
    garm_env,
    one_line_failure,
    remove_tagged,
    run,
    settle,
    socket_config,
    tagged,
)

pytestmark = pytest.mark.reliability
pytest_plugins = ["reliability.fixtures"]

# What the one stderr line must say for each fault (the deadlines come from fixtures.py).
MESSAGES = {
    Fault.HANG: r"timed out after \d+s",
    Fault.ERROR_500: r"injected fault: internal server error",
    Fault.INVALID_JSON: r"not JSON",
    Fault.TRUNCATE: r"connection to LXD at \S+ failed",
    Fault.CLOSE: r"connection to LXD at \S+ failed",
    Fault.DROP_ANSWER: r"connection to LXD at \S+ failed",
    Fault.GO_DOWN: r"(cannot connect|connection) to LXD at \S+",
    Fault.FAIL_OPERATION: r"injected fault: operation failed",
    Fault.STALL_OPERATION: r"did not finish within \d+s",
}
READ_FAULTS = [Fault.HANG, Fault.ERROR_500, Fault.INVALID_JSON, Fault.TRUNCATE, Fault.CLOSE]


@pytest.fixture(scope="module")
def shared(
    provider_bin: str, lxd_env: LxdEnv, lxd_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any]]]:
    """One running instance (and its controller id) that the read-fault tests share."""
    ctl = str(uuid.uuid4())
    config = socket_config(tmp_path_factory.mktemp("shared") / "direct.toml", lxd_env.socket)
    boot = bootstrap_payload(f"garm-flt-{uuid.uuid4().hex[:8]}")
    env = garm_env("CreateInstance", config, ctl, pool_id=boot["pool_id"])
    created = run(provider_bin, env, json.dumps(boot).encode())
    assert created.returncode == 0, created.error
    yield ctl, boot
    remove_tagged(lxd_client, ctl)


def _check_read(outcome: Outcome, command: str, boot: dict[str, Any]) -> None:
    assert outcome.returncode == 0, (command, outcome.error)
    if command == "ListInstances":
        assert [item["name"] for item in outcome.json()] == [boot["name"]]
    elif command == "GetInstance":
        assert outcome.json()["name"] == boot["name"]
        assert outcome.json()["status"] == "running"


@pytest.mark.parametrize("fault", [*READ_FAULTS, Fault.GO_DOWN], ids=lambda f: f.value)
@pytest.mark.parametrize("command", ["ListInstances", "GetInstance"])
def test_fault_on_every_request_is_one_clear_line_and_the_next_command_works(
    provider: Provider,
    proxy_config: Path,
    fault_proxy: FaultProxy,
    shared: tuple[str, dict[str, Any]],
    lxd_client: Any,
    command: str,
    fault: Fault,
) -> None:
    ctl, boot = shared
    name = boot["name"]
    fault_proxy.add(fault)
    call = {"name": name, "pool_id": boot["pool_id"], "as_controller": ctl}
    line = one_line_failure(provider(command, proxy_config, **call))
    assert re.search(MESSAGES[fault], line), line
    assert not line.startswith("internal error"), line
    # The instance is untouched and the very next command through the same path works.
    assert lxd_client.instances.get(name).status == "Running"
    fault_proxy.clear()
    _check_read(provider(command, proxy_config, **call), command, boot)


@pytest.mark.parametrize(
    "command",
    [
        "CreateInstance",
        "DeleteInstance",
        "GetInstance",
        "ListInstances",
        "RemoveAllInstances",
        "StartInstance",
        "StopInstance",
    ],
)
def test_missing_daemon_is_one_clear_line(
    provider: Provider,
    tmp_path: Path,
    bootstrap: Callable[..., dict[str, Any]],
    command: str,
) -> None:
    config = socket_config(tmp_path / "gone.toml", str(tmp_path / "no-daemon" / "unix.socket"))
    boot = bootstrap(f"garm-flt-{uuid.uuid4().hex[:8]}")
    outcome = provider(
        command, config, name=boot["name"], boot=boot if command == "CreateInstance" else None
    )
    line = one_line_failure(outcome)
    assert re.search(r"cannot connect to LXD at \S+no-daemon/unix.socket", line), line


# Where in a create the fault strikes: (method, path pattern, matching requests to let through).
STEPS = {
    "server-info": ("GET", r"^/1\.0(\?|$)", 0),
    "existence-check": ("GET", r"^/1\.0/instances/[^/?]+(\?|$)", 0),
    "create-request": ("POST", r"^/1\.0/instances(\?|$)", 0),
    "create-wait": ("GET", r"^/1\.0/operations/[^/]+/wait", 0),
    "start-request": ("PUT", r"/state(\?|$)", 0),
    "start-wait": ("GET", r"^/1\.0/operations/[^/]+/wait", 1),
    # The address poll reads the instance (with its state, or then /state on older servers).
    "address-poll": ("GET", r"^/1\.0/instances/[^/?]+(/state)?(\?|$)", 1),
}
# Every step sees at least one fault; every fault strikes at least one step.
CREATE_CASES = [
    ("server-info", Fault.HANG),
    ("existence-check", Fault.ERROR_500),
    ("create-request", Fault.TRUNCATE),
    ("create-request", Fault.GO_DOWN),
    ("create-request", Fault.DROP_ANSWER),
    ("create-wait", Fault.FAIL_OPERATION),
    ("create-wait", Fault.STALL_OPERATION),
    ("create-wait", Fault.ERROR_500),
    ("start-request", Fault.INVALID_JSON),
    ("start-request", Fault.GO_DOWN),
    ("start-wait", Fault.HANG),
    ("address-poll", Fault.INVALID_JSON),
    ("address-poll", Fault.CLOSE),
]
# A stalled operation or a closed connection is survived once (a second long-poll, a resend
# on a fresh connection); the fault must persist to make the create fail. A hanging start
# wait persists too, so that the cleanup's own waits hang and must end at their deadlines.
PERSISTENT = {("create-wait", Fault.STALL_OPERATION), ("address-poll", Fault.CLOSE)}
PERSISTENT |= {("start-wait", Fault.HANG)}


@pytest.mark.parametrize(
    ("step", "fault"), CREATE_CASES, ids=[f"{s}-{f.value}" for s, f in CREATE_CASES]
)
def test_create_interrupted_at_any_step_is_cleaned_up_by_garms_delete(
    provider: Provider,
    proxy_config: Path,
    fault_proxy: FaultProxy,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
    step: str,
    fault: Fault,
) -> None:
    method, path, skip = STEPS[step]
    times = -1 if (step, fault) in PERSISTENT else 1
    rule = fault_proxy.add(fault, method, path, skip=skip, times=times)
    boot = bootstrap(f"garm-flt-{uuid.uuid4().hex[:8]}")
    name = boot["name"]

    line = one_line_failure(provider("CreateInstance", proxy_config, boot=boot))
    assert rule.hit.is_set(), f"the create failed before reaching {step}: {line}"
    assert re.search(MESSAGES[fault], line), line
    assert not line.startswith("internal error"), line

    # The daemon is back; GARM's follow-up DeleteInstance(name) must leave nothing behind.
    fault_proxy.clear()
    deleted = provider("DeleteInstance", proxy_config, name=name)
    assert deleted.returncode == 0, deleted.error
    # Nothing left, and nothing that LXD was still creating turns up afterwards.
    settle(lxd_client)
    assert tagged(lxd_client, controller) == {}


def test_operation_failure_on_delete_is_reported_and_the_retry_succeeds(
    provider: Provider,
    proxy_config: Path,
    direct_config: Path,
    fault_proxy: FaultProxy,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
) -> None:
    boot = bootstrap(f"garm-flt-{uuid.uuid4().hex[:8]}")
    assert provider("CreateInstance", direct_config, boot=boot).returncode == 0
    fault_proxy.add(Fault.FAIL_OPERATION, "GET", r"/wait", times=-1)
    line = one_line_failure(provider("DeleteInstance", proxy_config, name=boot["name"]))
    assert re.search(MESSAGES[Fault.FAIL_OPERATION], line), line
    fault_proxy.clear()
    assert provider("DeleteInstance", proxy_config, name=boot["name"]).returncode == 0
    assert tagged(lxd_client, controller) == {}
