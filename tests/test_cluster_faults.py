"""A cluster member killed, hung (SIGSTOP) or cut off the network, and what GARM hears from us.

One three-member cluster (tests/env/cluster-up.sh) and one set of runners serve the whole
matrix: member3 (not the database leader, so the cluster keeps its quorum) takes each fault in
turn; every GARM command runs, under both interface versions, against a runner on member3 and
one on healthy member1, all at once, through member1's socket. After member3 is restored,
GARM's retries (the deletes of the failed creates, RemoveAllInstances again) must leave nothing
behind and lose nothing. Durations are printed (run with -s), never asserted. The tests share
the cluster and the fleet through module-scoped fixtures, which is why they are one module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pylxd
import pytest
from cluster_daemon import CLUSTER_UP
from conftest import (
    CONTROLLER_ID_KEY,
    RunProvider,
    bootstrap_payload,
    delete_controller_instances,
    run_env_script,
    run_operator,
)
from reliability.harness import Outcome, garm_env, run_many

pytestmark = pytest.mark.cluster

VERSIONS = ("v0.1.0", "v0.1.1")
AFFECTED = "member3"
HEALTHY = "member1"
POOL_KEY = "user.runner-pool-id"
# Below LXD's own answers for an unreachable member (10 s for a forwarded request, 20 s for a
# dial that times out) would turn those into our timeouts: both end in exit 1, so the matrix
# uses a short one to bound the requests LXD never answers (a create forwarded to a hung
# member).
REQUEST_TIMEOUT = 15
OFFLINE_WAIT = 90.0
FORWARD_WAIT = 90.0
FAULTS = ("kill", "sigstop", "netcut")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The test cluster as the matrix uses it."""

    client: pylxd.Client
    image: str
    socket: str
    sockets: dict[str, str]
    state_dir: Path


@dataclasses.dataclass
class Fleet:
    """Controller A's runners (pool `pool`) and controller B's, for RemoveAllInstances.

    B's runners are replaced after each fault (RemoveAllInstances removed them).
    """

    controller: str
    pool: str
    healthy: str
    affected: str
    other_controller: str
    other_healthy: str
    other_affected: str


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    """The test cluster, brought up (idempotently)."""
    values = run_env_script(CLUSTER_UP)
    members, sockets = values["CLUSTER_MEMBERS"], values["CLUSTER_SOCKETS"]
    by_member = dict(zip(members.split(","), sockets.split(","), strict=True))
    return Cluster(
        client=pylxd.Client(endpoint=by_member[HEALTHY]),
        image=values["CLUSTER_IMAGE"],
        socket=by_member[HEALTHY],
        sockets=by_member,
        state_dir=Path(values["CLUSTER_DIR"]),
    )


def raw_runner(cluster: Cluster, controller: str, pool: str, target: str) -> str:
    """Create and start a tagged instance on target directly; return its name."""
    name = f"garm-flt-{uuid.uuid4().hex[:10]}"
    body = {
        "name": name,
        "source": {"type": "image", "alias": cluster.image},
        "config": {CONTROLLER_ID_KEY: controller, POOL_KEY: pool},
    }
    response = cluster.client.api.instances.post(json=body, params={"target": target})
    cluster.client.operations.wait_for_operation(response.json()["operation"])
    cluster.client.instances.get(name).start(wait=True)
    return name


@pytest.fixture(scope="module")
def fleet(cluster: Cluster) -> Iterator[Fleet]:
    """Two runners of controller A and two of controller B, on member1 and member3 each."""
    a, b, pool = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    try:
        yield Fleet(
            controller=a,
            pool=pool,
            healthy=raw_runner(cluster, a, pool, HEALTHY),
            affected=raw_runner(cluster, a, pool, AFFECTED),
            other_controller=b,
            other_healthy=raw_runner(cluster, b, pool, HEALTHY),
            other_affected=raw_runner(cluster, b, pool, AFFECTED),
        )
    finally:
        run_env_script(CLUSTER_UP)  # a failed test may have left member3 down
        for controller in (a, b):
            delete_controller_instances(cluster.client, controller)


@pytest.fixture(autouse=True)
def tidy(cluster: Cluster, fleet: Fleet) -> Iterator[None]:
    """After each test, the fleet as the next one expects it, also when the test failed.

    A passing test leaves nothing to do here; without it, what a failed test left behind (its
    creates, controller B's removed runners) would fail every later test as well.
    """
    yield
    runners = (fleet.healthy, fleet.affected, fleet.other_healthy, fleet.other_affected)
    for controller in (fleet.controller, fleet.other_controller):
        delete_controller_instances(cluster.client, controller, keep=runners)
    if located(cluster, fleet.other_healthy) is None:
        fleet.other_healthy = raw_runner(cluster, fleet.other_controller, fleet.pool, HEALTHY)
    if located(cluster, fleet.other_affected) is None:
        fleet.other_affected = raw_runner(cluster, fleet.other_controller, fleet.pool, AFFECTED)


@pytest.fixture(scope="module")
def config(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A provider config on member1's socket."""
    path = tmp_path_factory.mktemp("faults") / "provider.toml"
    path.write_text(
        f"unix_socket_path = {json.dumps(cluster.socket)}\n"
        'instance_type = "container"\n'
        f"request_timeout_seconds = {REQUEST_TIMEOUT}\n"
    )
    return path


@pytest.fixture(scope="module")
def garm(
    run_provider: RunProvider, config: Path
) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run one provider command through member1's socket, as GARM would."""

    def run(command: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        return run_provider(command, config=config, **kwargs)

    return run


@pytest.fixture(scope="module")
def run_provider(provider_bin: str) -> RunProvider:
    """The conftest runner, module-scoped."""
    from conftest import make_runner

    return make_runner(provider_bin)


# -- faults -----------------------------------------------------------------------------------


def member_pid(cluster: Cluster) -> int:
    """The pid of member3's daemon (cluster-up.sh's pid file)."""
    return int((cluster.state_dir / f"{AFFECTED}.pid").read_text().split()[0])


def inflict(cluster: Cluster, kind: str) -> None:
    """Kill member3's daemon, stop it, or take its cluster link down."""
    if kind == "kill":
        os.kill(member_pid(cluster), signal.SIGKILL)
    elif kind == "sigstop":
        os.kill(member_pid(cluster), signal.SIGSTOP)
    else:
        subprocess.run(["ip", "-n", "garm-cl3", "link", "set", "clnet0", "down"], check=True)


def restore(cluster: Cluster, kind: str) -> None:
    """Undo inflict; cluster-up.sh restarts a killed member and waits for all to be online."""
    if kind == "sigstop":
        os.kill(member_pid(cluster), signal.SIGCONT)
    elif kind == "netcut":
        subprocess.run(["ip", "-n", "garm-cl3", "link", "set", "clnet0", "up"], check=True)
    run_env_script(CLUSTER_UP)
    wait_forwarding(cluster, AFFECTED)


def wait_forwarding(cluster: Cluster, member: str) -> None:
    """Wait until member1 forwards requests to member again.

    "Online" is not enough: member1 forwards only once its event connection to the member is
    back, which its heartbeat restores some seconds later. Until then LXD answers 500 "Missing
    event connection with target cluster member" (the provider exits 1 on that, and GARM
    retries); what runs after a restore models a member that is fully back.
    """
    began = time.monotonic()
    while True:
        try:
            cluster.client.api.resources.get(params={"target": member})
            return
        except pylxd.exceptions.LXDAPIException as error:
            if time.monotonic() - began > FORWARD_WAIT:
                pytest.fail(f"member1 still does not forward to {member}: {error}")
        time.sleep(0.5)


def wait_offline(cluster: Cluster) -> float:
    """Wait until member1 marks member3 offline; return how long that took."""
    began = time.monotonic()
    while time.monotonic() - began < OFFLINE_WAIT:
        members = cluster.client.api.cluster.members.get(params={"recursion": "1"}).json()
        status = {m["server_name"]: m["status"] for m in members["metadata"]}
        if status[AFFECTED] == "Offline":
            return time.monotonic() - began
        time.sleep(0.5)
    pytest.fail(f"{AFFECTED} was not marked offline within {OFFLINE_WAIT:.0f} s")


def located(cluster: Cluster, name: str) -> str | None:
    """The member instance name lives on, or None if it does not exist."""
    try:
        return str(cluster.client.instances.get(name).location)
    except pylxd.exceptions.NotFound:
        return None


def names_of(cluster: Cluster, *controllers: str) -> set[str]:
    """The instances (anywhere in the cluster) tagged with one of the controllers."""
    return {
        i.name
        for i in cluster.client.instances.all(recursion=1)
        if i.config.get(CONTROLLER_ID_KEY) in controllers
    }


# -- the matrix -------------------------------------------------------------------------------

Result = tuple[subprocess.CompletedProcess[bytes], float]


def one_line_error(result: Result) -> None:
    """Exit 1 (never 30) with one line on stderr and nothing on stdout."""
    proc, _ = result
    assert (proc.returncode, proc.stdout) == (1, b""), proc.stderr
    assert proc.stderr.decode().count("\n") == 1, proc.stderr


@pytest.mark.parametrize("kind", FAULTS)
def test_member_fault(
    kind: str,
    cluster: Cluster,
    fleet: Fleet,
    garm: Callable[..., Any],
    config: Path,
    provider_bin: str,
) -> None:
    a, b = fleet.controller, fleet.other_controller
    before = names_of(cluster, a, b)
    assert before == {fleet.healthy, fleet.affected, fleet.other_healthy, fleet.other_affected}
    missing = f"garm-never-{uuid.uuid4().hex[:8]}"
    creates: dict[tuple[str, str], str] = {}

    def timed(job: Callable[[], subprocess.CompletedProcess[bytes]]) -> Result:
        began = time.monotonic()
        proc = job()
        return proc, time.monotonic() - began

    def command(name: str, version: str, instance: str = "", controller: str = a) -> Result:
        return timed(
            lambda: garm(
                name,
                controller_id=controller,
                pool_id=fleet.pool,
                instance_id=instance,
                interface_version=version,
            )
        )

    def create(version: str, target: str) -> Result:
        name = f"garm-flc-{uuid.uuid4().hex[:10]}"
        creates[(version, target)] = name
        specs = {"target": target} if target else None
        boot = bootstrap_payload(name, pool_id=fleet.pool, extra_specs=specs)
        return timed(
            lambda: garm(
                "CreateInstance",
                controller_id=a,
                pool_id=fleet.pool,
                interface_version=version,
                extra_specs=specs,
                stdin=json.dumps(boot).encode(),
            )
        )

    def stop_start_healthy(version: str) -> Result:
        stopped = command("StopInstance", version, fleet.healthy)
        if stopped[0].returncode:
            return stopped
        return command("StartInstance", version, fleet.healthy)

    def remove_all() -> list[Result]:
        return [command("RemoveAllInstances", v, controller=b) for v in VERSIONS]

    jobs: dict[tuple[str, str], Callable[[], Any]] = {}
    results: dict[tuple[str, str], Any]
    for v in VERSIONS:
        jobs[("list", v)] = partial(command, "ListInstances", v)
        jobs[("get-healthy", v)] = partial(command, "GetInstance", v, fleet.healthy)
        for key, name in (
            ("get-affected", "GetInstance"),
            ("stop-affected", "StopInstance"),
            ("start-affected", "StartInstance"),
            ("delete-affected", "DeleteInstance"),
        ):
            jobs[(key, v)] = partial(command, name, v, fleet.affected)
        jobs[("delete-missing", v)] = partial(command, "DeleteInstance", v, missing)
        jobs[("create-any", v)] = partial(create, v, "")
        jobs[("create-@g2", v)] = partial(create, v, "@g2")
        jobs[("create-member3", v)] = partial(create, v, AFFECTED)
    jobs[("remove-all", "both")] = remove_all

    inflict(cluster, kind)
    try:
        offline_after = wait_offline(cluster)
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = {key: pool.submit(job) for key, job in jobs.items()}
            results = {key: future.result() for key, future in futures.items()}
        # Not alongside the creates, which prune could take for idle runners.
        operator = {
            args[0]: run_operator(
                provider_bin, *args, "--config", str(config), "--controller-id", a
            )
            for args in (("status",), ("prune", "--older-than", "0s", "--apply"))
        }
        # Not alongside the rest: the listing and GetInstance expect it running.
        for v in VERSIONS:
            results[("stop-start-healthy", v)] = stop_start_healthy(v)
        matrix_seconds = time.monotonic() - began
    finally:
        restore(cluster, kind)

    print(f"\n{kind}: member3 offline after {offline_after:.1f} s; matrix {matrix_seconds:.1f} s")
    for (job, version), value in results.items():
        for proc, seconds in value if isinstance(value, list) else [value]:
            print(f"  {job:<20} {version:<7} exit {proc.returncode:>2} {seconds:5.1f} s")

    for v in VERSIONS:
        # What lives on member3 cannot be read, and is said so: exit 1, never 30.
        for failed in ("get-affected", "stop-affected", "start-affected", "delete-affected"):
            one_line_error(results[(failed, v)])
        # A missing instance is not called deleted while a create may still land on member3.
        one_line_error(results[("delete-missing", v)])
        assert results[("get-healthy", v)][0].returncode == 0
        assert json.loads(results[("get-healthy", v)][0].stdout)["status"] == "running"
        assert results[("stop-start-healthy", v)][0].returncode == 0
        # The listing holds both runners: member3's with the status "unknown".
        listed, _ = results[("list", v)]
        assert listed.returncode == 0, listed.stderr
        statuses = {i["name"]: i["status"] for i in json.loads(listed.stdout)}
        assert statuses[fleet.healthy] == "running"
        assert statuses[fleet.affected] == "unknown"
        assert fleet.other_healthy not in statuses
        # Placement by LXD's scheduler or by group lands on a healthy member.
        for target, members in (("", {"member1", "member2"}), ("@g2", {"member2"})):
            proc, _ = results[(f"create-{target or 'any'}", v)]
            assert proc.returncode == 0, proc.stderr
            assert located(cluster, creates[(v, target)]) in members
        one_line_error(results[("create-member3", v)])
    # status and prune name the member they cannot read; prune leaves its runner alone.
    status, prune = operator["status"], operator["prune"]
    assert status.returncode == 0, status.stderr
    assert "cluster member member3 unreachable" in status.stdout
    assert fleet.affected in status.stdout
    assert prune.returncode == 1, prune.stderr
    assert "cluster member member3 unreachable" in prune.stdout
    assert "deleted 0 of 0" in prune.stdout
    for result in results[("remove-all", "both")]:
        one_line_error(result)
    assert b"member3" in results[("remove-all", "both")][0][0].stderr
    # RemoveAllInstances removed what it could reach, and only that.
    assert located(cluster, fleet.other_healthy) is None
    assert located(cluster, fleet.other_affected) == AFFECTED

    # Member3 is back. GARM deletes every create it saw fail, and all it created; it removes
    # controller B's runners again.
    for (v, _), name in creates.items():
        proc = garm(
            "DeleteInstance",
            controller_id=a,
            pool_id=fleet.pool,
            instance_id=name,
            interface_version=v,
        )
        assert (proc.returncode, proc.stdout) == (0, b""), proc.stderr
    removed = garm("RemoveAllInstances", controller_id=b, interface_version="v0.1.1")
    assert removed.returncode == 0, removed.stderr
    # Nothing leaked, nothing lost: controller A's two runners, running, and nothing else.
    assert names_of(cluster, a, b) == {fleet.healthy, fleet.affected}
    for name in (fleet.healthy, fleet.affected):
        got = garm("GetInstance", controller_id=a, pool_id=fleet.pool, instance_id=name)
        assert json.loads(got.stdout)["status"] == "running", got.stderr
    # Controller B's runners come back for the next fault.
    fleet.other_healthy = raw_runner(cluster, b, fleet.pool, HEALTHY)
    fleet.other_affected = raw_runner(cluster, b, fleet.pool, AFFECTED)


# -- a member restarted in the middle of a burst ---------------------------------------------

# 40 creates and 40 deletes were run by hand (GARM_TEST_RESTART_BURST=40, docs/clusters-and-
# incus.md); CI runs fewer to keep its time down.
BURST = int(os.environ.get("GARM_TEST_RESTART_BURST", "8"))
RESTARTED = "member2"
# How far into a burst the member goes down: early, while most requests are in flight.
RESTART_AFTER = 1.0
DELETE_RETRIES = 5


def restart_member(cluster: Cluster, member: str) -> None:
    """Stop member's daemon (SIGTERM, as a service restart does), then start it again."""
    pid = int((cluster.state_dir / f"{member}.pid").read_text().split()[0])
    os.kill(pid, signal.SIGTERM)
    while Path(f"/proc/{pid}/exe").exists():
        time.sleep(0.1)
    run_env_script(CLUSTER_UP)
    wait_forwarding(cluster, member)


def burst(
    provider_bin: str, envs: list[dict[str, str]], stdins: list[bytes], during: Callable[[], None]
) -> list[Outcome]:
    """Start every command at once; run during() a moment later; return the outcomes."""

    def later() -> None:
        time.sleep(RESTART_AFTER)
        during()

    with ThreadPoolExecutor(max_workers=1) as side:
        fault = side.submit(later)
        outcomes = run_many(provider_bin, list(zip(envs, stdins, strict=True)))
        fault.result()
    return outcomes


def clean(outcome: Outcome) -> bool:
    """Success, or a one-line exit 1 (never 30, never a traceback)."""
    if outcome.returncode == 0:
        return True
    return (
        outcome.returncode == 1
        and outcome.stdout == b""
        and outcome.error.count("\n") == 1
        and "Traceback" not in outcome.error
    )


def test_member_restart_in_a_burst(
    cluster: Cluster, fleet: Fleet, config: Path, provider_bin: str
) -> None:
    a, pool_id = fleet.controller, fleet.pool
    spare = str(uuid.uuid4())  # this test's own controller: fleet's runners stay out of it
    specs = {"target": RESTARTED}
    names = [f"garm-flb-{uuid.uuid4().hex[:10]}" for _ in range(BURST)]

    # Half the commands go through member1 (which forwards them: the cluster-member case), half
    # through the restarted member's own socket (which goes away: the single-server case).
    direct = config.with_name("direct.toml")
    direct.write_text(config.read_text().replace(cluster.socket, cluster.sockets[RESTARTED]))

    def env(command: str, name: str) -> dict[str, str]:
        via = direct if names.index(name) % 2 else config
        return garm_env(command, via, spare, pool_id=pool_id, instance_id=name, extra_specs=specs)

    boots = [
        json.dumps(bootstrap_payload(n, pool_id=pool_id, extra_specs=specs)).encode() for n in names
    ]
    began = time.monotonic()
    created = burst(
        provider_bin,
        [env("CreateInstance", n) for n in names],
        boots,
        lambda: restart_member(cluster, RESTARTED),
    )
    create_seconds = time.monotonic() - began
    assert all(clean(o) for o in created), [o.error for o in created if not clean(o)]
    made = {n for n, o in zip(names, created, strict=True) if o.returncode == 0}
    # GARM deletes every create it saw fail; the delete is retried until it succeeds.
    for name, outcome in zip(names, created, strict=True):
        if outcome.returncode:
            retry_delete(provider_bin, env("DeleteInstance", name))
    # Nothing leaked (a failed create left nothing), nothing lost (every success is there).
    assert names_of(cluster, spare) == made

    # The delete burst needs runners to delete: those the restart kept from being created now.
    with ThreadPoolExecutor(max_workers=4) as pool:
        made |= set(
            pool.map(lambda _: raw_runner(cluster, spare, pool_id, RESTARTED), names[len(made) :])
        )
    names = sorted(made)
    began = time.monotonic()
    deleted = burst(
        provider_bin,
        [env("DeleteInstance", n) for n in names],
        [b""] * BURST,
        lambda: restart_member(cluster, RESTARTED),
    )
    delete_seconds = time.monotonic() - began
    assert all(clean(o) for o in deleted), [o.error for o in deleted if not clean(o)]
    for name, outcome in zip(names, deleted, strict=True):
        if outcome.returncode:
            retry_delete(provider_bin, env("DeleteInstance", name))
    assert names_of(cluster, spare) == set()
    assert names_of(cluster, a) == {fleet.healthy, fleet.affected}
    print(
        f"\nrestart of {RESTARTED} in a burst of {BURST}: creates {create_seconds:.1f} s "
        f"({BURST - len(made)} failed cleanly), deletes {delete_seconds:.1f} s "
        f"({sum(1 for o in deleted if o.returncode)} failed cleanly, then retried)"
    )


def retry_delete(provider_bin: str, env: dict[str, str]) -> None:
    """DeleteInstance as GARM retries it: again until it exits 0."""
    for _ in range(DELETE_RETRIES):
        outcome = run_many(provider_bin, [(env, b"")])[0]
        assert clean(outcome), outcome.error
        if outcome.returncode == 0:
            return
        time.sleep(2)
    pytest.fail(f"DeleteInstance still failing after {DELETE_RETRIES} tries: {outcome.error}")
