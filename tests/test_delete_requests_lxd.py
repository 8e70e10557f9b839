"""Concurrent DeleteInstance of running instances sends LXD's floor of requests, each once."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability.faultproxy import FaultProxy
from reliability.harness import Provider, garm_env, run_many, tagged

pytestmark = pytest.mark.reliability
pytest_plugins = ["reliability.fixtures"]

AT_ONCE = 3
WAIT = re.compile(r"^/1\.0/operations/[^/?]+/wait\?")


def test_concurrent_deletes_of_running_instances_send_each_request_once(
    provider_bin: str,
    provider: Provider,
    direct_config: Path,
    proxy_config: Path,
    fault_proxy: FaultProxy,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
) -> None:
    # GARM deletes several running runners at once on scale-down. What the provider sends is
    # what the LXD floor in benches/bench_concurrent_deletes.py sends: no graceful stop, no
    # retry, no wait on other operations; the time is LXD's (docs/performance.md).
    names = [f"garm-proc-{uuid.uuid4().hex[:8]}" for _ in range(AT_ONCE)]
    for name in names:
        made = provider("CreateInstance", direct_config, boot=bootstrap(name))
        assert made.returncode == 0, made.error
    assert all(lxd_client.instances.get(n).status == "Running" for n in names)
    force_delete = "instance_force_delete" in lxd_client.host_info["api_extensions"]

    envs = [
        (garm_env("DeleteInstance", proxy_config, controller, instance_id=n), b"") for n in names
    ]
    outcomes = run_many(provider_bin, envs)

    assert [o.returncode for o in outcomes] == [0] * AT_ONCE, [o.error for o in outcomes]
    assert tagged(lxd_client, controller) == {}
    requests = fault_proxy.requests
    for name in names:
        mine = [(method, path.split("?")[0]) for method, path in requests if name in path]
        instance = f"/1.0/instances/{name}"
        if force_delete:
            assert mine == [("GET", instance), ("DELETE", instance)], mine
        else:
            assert mine == [
                ("GET", instance),
                ("PUT", f"{instance}/state"),
                ("DELETE", instance),
            ], mine
    others = Counter(
        "wait" if WAIT.match(path) else f"{method} {path.split('?')[0]}"
        for method, path in requests
        if not any(name in path for name in names)
    )
    # One GET /1.0 per process, one operation wait per stop and per DELETE, nothing else:
    # in particular no GET /1.0/operations (the busy-retry path).
    waits = AT_ONCE * (1 if force_delete else 2)
    assert others == Counter({"GET /1.0": AT_ONCE, "wait": waits}), others
