"""One function per benchmarked command: provider processes and the raw LXD floor, interleaved."""

from __future__ import annotations

import json
import time
from functools import partial

import populate
from harness import Bench, Budget, Row, pair, short_id, timed
from lxdapi import force_delete, wait_for_ipv4, with_project
from proc import Sample

GO = {
    "GetVersion": "0.01 s / <0.01 s / 12 MB",
    "GetInstance": "0.03-0.06 s / 0.01 s / 15 MB",
    "StartInstance": "0.35 s / 0.01 s / 15 MB",
    "StopInstance": "0.87 s / 0.01 s / 15 MB",
    "DeleteInstance": "0.95 s / 0.02 s / 15 MB",
    "CreateInstance": "5.4 s / 0.03 s / 16 MB",
    "ListInstances": "6.5 s / 0.18 s / 42 MB (1,004)",
}
FAST = Budget(overhead_ms=60, cpu_ms=80)
LIST_SETTLE_SECONDS = 1.0


def python_floor(b: Bench, reps: int) -> Row:
    """`python -c pass` with the console script's interpreter: the floor of every process."""
    row = Row("python", "`python -c pass` (interpreter floor)", budget=Budget(rss_mb=None))
    row.samples = [b.python_pass() for _ in range(reps)]
    return row


def get_version(b: Bench, reps: int) -> Row:
    """GetVersion: no LXD request at all."""
    row = Row("GetVersion", "GetVersion", budget=FAST, go=GO["GetVersion"], floor_what="none")
    b.provider("GetVersion")
    for _ in range(reps):
        row.samples.append(b.provider("GetVersion"))
        row.floor.append(0.0)
    return row


def _raw_get(b: Bench, name: str) -> None:
    lxd = b.raw()
    lxd.call("GET", "/1.0")
    lxd.call("GET", b.ipath(name))
    lxd.call("GET", b.ipath(name, "/state"))
    lxd.close()


def get_instance(b: Bench, reps: int) -> Row:
    """GetInstance of a running instance with an address."""
    row = Row("GetInstance", "GetInstance (running)", budget=FAST, go=GO["GetInstance"])
    row.floor_what = "GET /1.0 + GET instance + GET state"
    name = f"bc-get-{short_id()}"
    b.make(b.lxd, name, running=True)
    try:
        wait_for_ipv4(b.lxd, name, b.project)
        b.provider("GetInstance", instance=name)
        for rep in range(reps):
            elapsed, sample = pair(
                rep,
                lambda: timed(_raw_get, b, name),
                lambda: b.provider("GetInstance", instance=name),
            )
            assert json.loads(sample.stdout)["name"] == name
            row.floor.append(elapsed)
            row.samples.append(sample)
    finally:
        b.discard(name)
    return row


def _raw_state(b: Bench, name: str, action: str) -> float:
    begin = time.perf_counter()
    lxd = b.raw()
    lxd.call("GET", b.ipath(name))  # the provider's ownership check
    lxd.run("PUT", b.ipath(name, "/state"), {"action": action, "force": action == "stop"})
    lxd.close()
    return time.perf_counter() - begin


def start_stop(b: Bench, reps: int) -> tuple[Row, Row]:
    """StartInstance and StopInstance (force) of one busybox instance, alternating."""
    start = Row("StartInstance", "StartInstance", budget=FAST, go=GO["StartInstance"])
    stop = Row("StopInstance", "StopInstance (force)", budget=FAST, go=GO["StopInstance"])
    start.floor_what = "GET instance + PUT state start + operation wait"
    stop.floor_what = "GET instance + PUT state stop (force) + operation wait"
    name = f"bc-ss-{short_id()}"
    b.make(b.lxd, name, running=False)
    try:
        for rep in range(reps + 1):
            (t_start, t_stop), (s_start, s_stop) = pair(
                rep,
                lambda: (_raw_state(b, name, "start"), _raw_state(b, name, "stop")),
                lambda: (
                    b.provider("StartInstance", instance=name),
                    b.provider("StopInstance", instance=name),
                ),
            )
            if rep:  # the first round warms caches
                start.floor.append(t_start)
                stop.floor.append(t_stop)
                start.samples.append(s_start)
                stop.samples.append(s_stop)
    finally:
        b.discard(name)
    return start, stop


def _raw_delete(b: Bench, name: str) -> None:
    lxd = b.raw()
    lxd.call("GET", "/1.0")
    lxd.call("GET", b.ipath(name))  # the provider's ownership check
    if "instance_force_delete" in b.extensions:
        lxd.run("DELETE", b.ipath(name, force="true"))
    else:
        lxd.run("PUT", b.ipath(name, "/state"), {"action": "stop", "force": True})
        lxd.run("DELETE", b.ipath(name))
    lxd.close()


def delete_running(b: Bench, reps: int) -> Row:
    """DeleteInstance of a running instance (fresh for every sample)."""
    row = Row("DeleteInstance", "DeleteInstance (running)", budget=FAST, go=GO["DeleteInstance"])
    row.floor_what = (
        "GET /1.0 + GET instance + force delete ("
        + ("DELETE ?force=true" if "instance_force_delete" in b.extensions else "PUT stop + DELETE")
        + ", each with operation wait)"
    )
    for rep in range(reps + 1):
        raw_name, prov_name = f"bc-delr-{short_id()}", f"bc-delp-{short_id()}"
        b.make(b.lxd, raw_name, running=True)
        b.make(b.lxd, prov_name, running=True)
        try:
            elapsed, sample = pair(
                rep,
                partial(timed, _raw_delete, b, raw_name),
                partial(b.provider, "DeleteInstance", instance=prov_name),
            )
            assert not b.exists(prov_name), "DeleteInstance left the instance behind"
        finally:
            b.discard(raw_name, prov_name)
        if rep:
            row.floor.append(elapsed)
            row.samples.append(sample)
    return row


def _raw_create(b: Bench, name: str, wait: bool) -> float:
    begin = time.perf_counter()
    lxd = b.raw()
    lxd.call("GET", "/1.0")
    body = b.create_body(name)
    start = "instance_create_start" in b.extensions
    if start:
        body["start"] = True
    lxd.run("POST", b.path("/1.0/instances"), body)
    if not start:
        lxd.run("PUT", b.ipath(name, "/state"), {"action": "start"})
    lxd.call("GET", b.ipath(name))
    if wait:
        wait_for_ipv4(lxd, name, b.project, timeout=10)
    else:
        lxd.call("GET", b.ipath(name, "/state"))
    lxd.close()
    return time.perf_counter() - begin


def create(b: Bench, reps: int, *, wait: bool, template: bool = False) -> Row:
    """CreateInstance from the busybox image, with address_wait_seconds = 0 or the default.

    The user data comes from the default install script, or with `template` from the pool's
    runner_install_template (Go text/template).
    """
    key = "CreateInstance/wait" if wait else "CreateInstance"
    label = "CreateInstance (default address wait)" if wait else "CreateInstance (no address wait)"
    if template:
        key, label = f"{key}/template", label.replace("(", "(pool template, ")
    budget = Budget(wall_s=1.5, cpu_ms=200) if wait else Budget(overhead_ms=150, cpu_ms=200)
    row = Row(key, label, budget=budget, go=GO["CreateInstance"])
    row.floor_what = "GET /1.0 + POST instance + start" + (
        " + GET instance + poll GET state (50 ms) for IPv4" if wait else " + GET + GET state"
    )
    row.extra["with_ipv4"] = 0
    for rep in range(reps + 1):
        raw_name, prov_name = f"bc-crr-{short_id()}", f"bc-crp-{short_id()}"
        try:
            elapsed, sample = pair(
                rep,
                partial(_raw_create, b, raw_name, wait),
                partial(
                    b.provider,
                    "CreateInstance",
                    config="default" if wait else "nowait",
                    stdin=b.bootstrap(prov_name, template=template),
                ),
            )
            result = json.loads(sample.stdout)
            assert result["name"] == prov_name and result["status"] == "running", result
        finally:
            b.discard(raw_name, prov_name)
        if rep:
            row.floor.append(elapsed)
            row.samples.append(sample)
            addresses = result.get("addresses") or []
            row.extra["with_ipv4"] += any(":" not in a["address"] for a in addresses)
    return row


def _raw_list(b: Bench, flt: str) -> None:
    lxd = b.raw()
    lxd.call("GET", "/1.0")
    query = {"recursion": "1", "filter": flt}
    lxd.request("GET", with_project("/1.0/instances", b.list_project, **query))
    lxd.close()


def list_pool(b: Bench, reps: int, count: int) -> Row:
    """ListInstances of one pool (controller 0, pool 0) with `count` instances in the project."""
    controller, pool = populate.controller_id(0), populate.pool_id(0, 0)
    expected = sorted(
        populate.name_of(i) for i in range(count) if populate.tags_of(i) == (controller, pool)
    )
    budget = Budget(overhead_ms=60, cpu_ms=80)
    if count >= 5000:
        budget.wall_s = 2.0
    elif count >= 1000:
        budget.wall_s = 0.5
    row = Row(f"ListInstances@{count}", f"ListInstances, 1 pool of {count:,}", budget=budget)
    row.go = GO["ListInstances"] if count == 1000 else ""
    flt = (
        f"config.user.runner-controller-id eq {controller} and config.user.runner-pool-id eq {pool}"
    )
    row.floor_what = "GET /1.0 + GET instances?recursion=1&filter=<controller and pool>"
    row.extra.update(instances=count, pool_size=len(expected))
    # A listing of 1,000+ instances leaves LXD busy (garbage collection) for a while after it
    # answers; each run gets an idle server, as the two requests' order otherwise decides.
    settle = LIST_SETTLE_SECONDS if count >= 1000 else 0.0
    for rep in range(reps + 1):
        elapsed, sample = pair(
            rep,
            lambda: timed(_raw_list, b, flt),
            lambda: b.provider("ListInstances", controller=controller, pool=pool, config="list"),
            settle,
        )
        names = sorted(item["name"] for item in json.loads(sample.stdout))
        assert names == expected, f"ListInstances returned {len(names)}, not {len(expected)}"
        if rep:
            row.floor.append(elapsed)
            row.samples.append(sample)
    return row


def remove_all(b: Bench, reps: int, size: int) -> tuple[Row, Row, Row]:
    """RemoveAllInstances of `size` running instances vs `size` sequential DeleteInstance runs."""
    remove = Row("RemoveAll", f"RemoveAllInstances of {size}", budget=Budget(cpu_ms=None))
    seq = Row("SequentialDelete", f"{size} x DeleteInstance, one after another")
    seq.budget = Budget(overhead_ms=None, cpu_ms=None, rss_mb=None)
    raw = Row("RawParallelDelete", f"raw LXD: delete {size} on 8 connections")
    raw.budget = Budget(rss_mb=None)
    for _ in range(reps):
        controller = f"bench-rm-{short_id()}"
        names = [f"bc-rm-{short_id()}" for _ in range(size)]
        b.make_many(names, controller=controller, nic=False)
        sample = b.provider("RemoveAllInstances", controller=controller, pool="")
        left = b.count_tagged(controller)
        assert left == 0, f"RemoveAllInstances left {left} instances"
        remove.samples.append(sample)

        controller = f"bench-sq-{short_id()}"
        names = [f"bc-sq-{short_id()}" for _ in range(size)]
        b.make_many(names, controller=controller, nic=False)
        runs = [
            b.provider("DeleteInstance", controller=controller, pool="", instance=name)
            for name in names
        ]
        seq.samples.append(
            Sample(
                wall=sum(s.wall for s in runs),
                cpu=sum(s.cpu for s in runs),
                rss_mb=max(s.rss_mb for s in runs),
                returncode=0,
            )
        )
    names = [f"bc-rw-{short_id()}" for _ in range(size)]
    b.make_many(names, nic=False)
    raw.samples.append(_raw_parallel_delete(b, names))
    return remove, seq, raw


def _raw_parallel_delete(b: Bench, names: list[str]) -> Sample:
    from concurrent.futures import ThreadPoolExecutor

    def one(chunk: list[str]) -> None:
        lxd = b.raw()
        for name in chunk:
            force_delete(lxd, name, b.project)
        lxd.close()

    begin = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, [names[i::8] for i in range(8)]))
    return Sample(wall=time.perf_counter() - begin, cpu=0.0, rss_mb=0.0, returncode=0)
