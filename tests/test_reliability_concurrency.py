"""Many provider processes at once, as GARM runs them: nothing lost, doubled, or misattributed."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from adversarial_corpus import Case, load_cases
from reliability.faultproxy import Fault, FaultProxy
from reliability.harness import (
    Outcome,
    Provider,
    garm_env,
    one_line_failure,
    remove_tagged,
    run,
    run_many,
    server_instances,
    socket_config,
    tagged,
)

pytestmark = pytest.mark.reliability
pytest_plugins = ["reliability.fixtures"]

# 50 creates (then 50 deletes) at once, three rounds: about four minutes on a busy 2-core
# machine with the busybox image (docs/reliability.md has the measurements).
PROCESSES = int(os.environ.get("GARM_RELIABILITY_PROCESSES", "50"))
ROUNDS = int(os.environ.get("GARM_RELIABILITY_ROUNDS", "3"))
POOLS_PER_CONTROLLER = 3


def _snapshot(client: Any, names: list[str]) -> dict[str, tuple[str, str]]:
    """Status and creation time of the named instances, as the server reports them."""
    return {
        item["name"]: (item["status"], item["created_at"])
        for item in server_instances(client)
        if item["name"] in names
    }


def _list(provider_bin: str, config: Path, jobs: list[tuple[str, str]]) -> list[Outcome]:
    """Run ListInstances for every (controller, pool) at once."""
    envs = [(garm_env("ListInstances", config, c, pool_id=p), b"") for c, p in jobs]
    return run_many(provider_bin, envs)


def test_fifty_creates_then_fifty_deletes_at_once(
    provider_bin: str,
    provider: Provider,
    direct_config: Path,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
    other_controller: str,
    untagged: str,
) -> None:
    # Two controllers run the load; a third controller's instance and an untagged instance
    # sit next to them and must never be touched.
    load_controllers = [controller, str(uuid.uuid4())]
    bystander = bootstrap(f"garm-by-{uuid.uuid4().hex[:8]}")
    made = provider("CreateInstance", direct_config, boot=bystander, as_controller=other_controller)
    assert made.returncode == 0, made.error
    bystanders = [bystander["name"], untagged]
    before = _snapshot(lxd_client, bystanders)
    assert len(before) == 2
    pools = {c: [str(uuid.uuid4()) for _ in range(POOLS_PER_CONTROLLER)] for c in load_controllers}

    try:
        for _ in range(ROUNDS):
            # Who owns what: name -> (controller, pool); mixed over controllers and pools.
            owner: dict[str, tuple[str, str]] = {}
            jobs = []
            for index in range(PROCESSES):
                ctl = load_controllers[index % 2]
                pool = pools[ctl][(index // 2) % POOLS_PER_CONTROLLER]
                boot = bootstrap(f"garm-cc-{uuid.uuid4().hex[:10]}", pool_id=pool)
                owner[boot["name"]] = (ctl, pool)
                env = garm_env("CreateInstance", direct_config, ctl, pool_id=pool)
                jobs.append((env, json.dumps(boot).encode()))

            created = run_many(provider_bin, jobs)
            for (name, _), outcome in zip(owner.items(), created, strict=True):
                assert outcome.returncode == 0, (name, outcome.error)
                result = outcome.json()
                assert (result["name"], result["provider_id"]) == (name, name)
                assert result["status"] == "running"

            # The server: each instance once, tagged with its own controller and pool.
            for ctl in load_controllers:
                on_server = tagged(lxd_client, ctl)
                mine = {n for n, (c, _) in owner.items() if c == ctl}
                assert set(on_server) == mine
                for name, config in on_server.items():
                    assert config["user.runner-pool-id"] == owner[name][1]

            # The provider's listings: every controller and every pool, all at once.
            queries = [(c, "") for c in load_controllers]
            queries += [(c, p) for c in load_controllers for p in pools[c]]
            for (ctl, pool), listed in zip(
                queries, _list(provider_bin, direct_config, queries), strict=True
            ):
                assert listed.returncode == 0, listed.error
                names = [item["name"] for item in listed.json()]
                expected = {n for n, (c, p) in owner.items() if c == ctl and pool in ("", p)}
                assert sorted(names) == sorted(expected)  # each exactly once
                assert all(item["status"] == "running" for item in listed.json())

            deletes = [
                (garm_env("DeleteInstance", direct_config, ctl, instance_id=name), b"")
                for name, (ctl, _) in owner.items()
            ]
            for name, outcome in zip(owner, run_many(provider_bin, deletes), strict=True):
                assert outcome.returncode == 0, (name, outcome.error)
            for ctl in load_controllers:
                assert tagged(lxd_client, ctl) == {}
            assert _snapshot(lxd_client, bystanders) == before
    finally:
        remove_tagged(lxd_client, load_controllers[1])


# How long RemoveAllInstances waits before it races the create (seconds): at once, and
# while the create or start operation runs.
RACE_OFFSETS = [0.0, 1.0]


def test_remove_all_racing_a_create_converges(
    provider_bin: str,
    provider: Provider,
    direct_config: Path,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
    other_controller: str,
) -> None:
    keep = bootstrap(f"garm-keep-{uuid.uuid4().hex[:8]}")
    kept = provider("CreateInstance", direct_config, boot=keep, as_controller=other_controller)
    assert kept.returncode == 0, kept.error
    before = _snapshot(lxd_client, [keep["name"]])

    for offset in RACE_OFFSETS:
        existing = bootstrap(f"garm-old-{uuid.uuid4().hex[:8]}")
        made = provider("CreateInstance", direct_config, boot=existing)
        assert made.returncode == 0, made.error
        racer = bootstrap(f"garm-race-{uuid.uuid4().hex[:8]}")
        with ThreadPoolExecutor(max_workers=1) as pool:
            creating = pool.submit(provider, "CreateInstance", direct_config, boot=racer)
            time.sleep(offset)
            removing = run(provider_bin, garm_env("RemoveAllInstances", direct_config, controller))
            outcomes = {"create": creating.result(), "remove": removing}

        # The removal waits out the create's operations and succeeds; the create either wins
        # (its instance is listed too late to be removed) or fails cleanly, never with 30.
        removed = outcomes["remove"]
        assert removed.returncode == 0, removed.error
        created = outcomes["create"]
        if created.returncode == 0:
            assert created.json()["name"] == racer["name"]
        else:
            one_line_failure(created, 1)
        assert existing["name"] not in tagged(lxd_client, controller)
        # GARM removes again; then nothing of this controller is left, whatever the race.
        again = run(provider_bin, garm_env("RemoveAllInstances", direct_config, controller))
        assert again.returncode == 0, again.error
        assert tagged(lxd_client, controller) == {}
        assert _snapshot(lxd_client, [keep["name"]]) == before


# The losing create of one name, as the corpus says (testdata/adversarial/race): LXD 5.0.2 fails
# its operation (recorded on the test daemon), never with an HTTP 409.
RACE_CASES = load_cases(via="race")
CREATE_POST = r"^/1\.0/instances(\?|$)"


@pytest.mark.parametrize("case", RACE_CASES, ids=[case.name for case in RACE_CASES])
def test_losing_create_of_one_name_leaves_the_winners_instance(
    provider: Provider,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    controller: str,
    other_controller: str,
    case: Case,
) -> None:
    """Two controllers create one name: the loser exits 31 or 1, the winner keeps its instance.

    The proxy holds the loser's POST (it has already seen the name free) until the winner's
    create has ended, or only until its operation has started (the case's hold_loser_until);
    during a create the window is a matter of timing, so that case runs several rounds.
    """
    # GARM-like deadlines: the loser's POST waits in the proxy while the winner creates.
    config = socket_config(tmp_path / "race.toml", fault_proxy.path, address_wait_seconds=3)
    winner_done = case.spec["hold_loser_until"] == "winner-done"
    for _ in range(case.spec["rounds"]):
        boot = bootstrap(f"garm-dup-{uuid.uuid4().hex[:8]}")
        held = fault_proxy.add(Fault.HOLD_REQUEST, "POST", CREATE_POST, times=1)
        started = None if winner_done else fault_proxy.add(Fault.HOLD, "POST", CREATE_POST)
        with ThreadPoolExecutor(max_workers=2) as pool:
            losing = pool.submit(provider, "CreateInstance", config, boot=boot)
            assert held.hit.wait(60), "the loser's create never reached the proxy"
            winning = pool.submit(
                provider, "CreateInstance", config, boot=boot, as_controller=other_controller
            )
            if started is None:
                winning.result()
            else:
                # LXD answered the winner's POST: its create operation runs.
                assert started.answered.wait(60), "the winner's create never started"
            held.release.set()
            fault_proxy.clear()
            loser, winner = losing.result(), winning.result()

        assert winner.returncode == case.expect_exit, winner.error
        assert winner.json()["name"] == boot["name"]
        line = one_line_failure(loser, loser.returncode)
        assert loser.returncode in case.spec["expect_loser_exit"], line
        assert any(error in line for error in case.spec["expect_loser_stderr"]), line
        # The winner keeps its instance, running; the loser made none.
        assert boot["name"] in tagged(lxd_client, other_controller)
        assert lxd_client.instances.get(boot["name"]).status == "Running"
        assert tagged(lxd_client, controller) == {}
