"""`setup` changes only what it created, and its ACL keeps runners off the host's own addresses.

Against the real test LXD. Objects get unique names (conftest.setup_names) and are removed
afterwards. One test adds a veth pair to the daemon's network namespace for its duration,
standing in for a host's public address (the namespace has only private ones).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pylxd
import pytest
from adversarial_corpus import Case, load_cases
from conftest import LxdEnv, run_operator
from setup_runs import lxd_object, setup_args, setup_config

from garm_provider_lxd.admin.setup import MANAGED_KEY

TEST_ENV_BRIDGES = ("garmbr0", "garmbr1", "garmclbr0")  # tests/env/*: lxd, incus, cluster


def test_default_names_do_not_collide_with_the_test_environment(
    provider_bin: str, lxd_env: LxdEnv, tmp_path: Path, setup_names: dict[str, str]
) -> None:
    config = setup_config(tmp_path, lxd_env, setup_names["project"])
    plan = run_operator(provider_bin, "setup", "--config", str(config))  # plan only
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "create network garm-runners\n" in plan.stdout
    assert not any(bridge in plan.stdout for bridge in (*TEST_ENV_BRIDGES, lxd_env.bridge))
    assert "update " not in plan.stdout


def test_an_existing_bridge_setup_did_not_create_is_refused_and_left_unchanged(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    tmp_path: Path,
    setup_names: dict[str, str],
) -> None:
    # Someone else's bridge of the name setup is given, on another subnet, no NAT, no ACL.
    lxd_client.api.networks.post(
        json={
            "name": setup_names["network"],
            "type": "bridge",
            "config": {
                "ipv4.address": "10.179.7.1/24",
                "ipv4.nat": "false",
                "ipv6.address": "none",
            },
            "description": "not setup's",
        }
    )
    before = lxd_object(lxd_client, "networks", setup_names["network"])
    config = setup_config(tmp_path, lxd_env, setup_names["project"])

    for apply in ([], ["--apply"]):  # the plan refuses as the change would
        done = run_operator(provider_bin, *setup_args(config, setup_names, *apply))

        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
        assert f"network {setup_names['network']} exists and is not setup's" in done.stderr
        assert f"config.ipv4.address 10.179.7.1/24 (wanted {setup_names['subnet']})" in done.stderr
        assert "config.security.acls unset" in done.stderr
        assert lxd_object(lxd_client, "networks", setup_names["network"]) == before
        # Nothing half-created: the refusal comes before the first change.
        assert setup_names["project"] not in {p.name for p in lxd_client.projects.all()}
        with pytest.raises(pylxd.exceptions.NotFound):
            lxd_client.api["network-acls"][setup_names["acl"]].get()


def test_an_existing_object_that_already_fits_is_used_and_not_marked(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    tmp_path: Path,
    setup_names: dict[str, str],
) -> None:
    # An ACL someone made that already has setup's rules (copied from a setup run elsewhere).
    config = setup_config(tmp_path, lxd_env, setup_names["project"])
    args = setup_args(config, setup_names)
    assert run_operator(provider_bin, *args, "--apply").returncode == 0
    acl = lxd_object(lxd_client, "network-acls", setup_names["acl"])
    lxd_client.api["network-acls"][setup_names["acl"]].put(
        json={
            "egress": acl["egress"],
            "ingress": acl["ingress"],
            "config": {},
            "description": "handed over",
        }
    )
    before = lxd_object(lxd_client, "network-acls", setup_names["acl"])

    again = run_operator(provider_bin, *args, "--apply")

    assert again.returncode == 0, again.stdout + again.stderr
    assert f"ok     network ACL {setup_names['acl']} is as wanted (not setup's" in again.stdout
    assert "nothing to do" in again.stdout
    assert lxd_object(lxd_client, "network-acls", setup_names["acl"]) == before


def test_setup_updates_its_own_objects_and_keeps_the_operators_acl_rules(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    tmp_path: Path,
    setup_names: dict[str, str],
) -> None:
    config = setup_config(tmp_path, lxd_env, setup_names["project"])
    args = setup_args(config, setup_names)
    assert run_operator(provider_bin, *args, "--apply").returncode == 0
    for kind, path, project in (
        ("project", ("projects", setup_names["project"]), ""),
        ("acl", ("network-acls", setup_names["acl"]), ""),
        ("network", ("networks", setup_names["network"]), ""),
        ("profile", ("profiles", setup_names["profile"]), setup_names["project"]),
    ):
        got = lxd_object(lxd_client, *path, project=project)["config"]
        assert got[MANAGED_KEY] == "managed", kind
    # The operator adds a rule of their own to setup's ACL.
    acl = lxd_object(lxd_client, "network-acls", setup_names["acl"])
    mirror = {"action": "allow", "destination": "10.20.30.40/32", "state": "enabled",
              "description": "package mirror"}  # fmt: skip
    # LXD 5.0.2's ACL PATCH is a PUT (a missing description is cleared), and without config
    # it drops the connection (a nil map).
    body = {**acl, "egress": [*acl["egress"], mirror]}
    added = _lxc(lxd_env, "query", "-X", "PATCH", "-d", json.dumps(body),
                 f"/1.0/network-acls/{setup_names['acl']}")  # fmt: skip
    assert added.returncode == 0, added.stderr

    rerun = run_operator(provider_bin, *args, "--apply")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "nothing to do" in rerun.stdout  # the operator's rule is not setup's to judge

    nesting = run_operator(provider_bin, *args, "--nesting", "--apply")
    assert nesting.returncode == 0, nesting.stdout + nesting.stderr
    assert f"update profile {setup_names['profile']}: config.security.nesting" in nesting.stdout
    assert "1 change(s) made" in nesting.stdout
    profile = lxd_object(
        lxd_client, "profiles", setup_names["profile"], project=setup_names["project"]
    )
    assert profile["config"]["security.nesting"] == "true"

    egress = lxd_object(lxd_client, "network-acls", setup_names["acl"])["egress"]
    assert any(
        rule.get("description") == "package mirror" and rule["destination"] == "10.20.30.40/32"
        for rule in egress
    ), egress


@contextlib.contextmanager
def _host_address(netns: str, address: str) -> Iterator[None]:
    """An interface holding `address` in the daemon's namespace, for the test's duration."""
    # A veth pair: the dummy driver is not loadable everywhere, veth is what LXD itself needs.
    name = f"garmpub{uuid.uuid4().hex[:6]}"
    ip = ["ip", "-n", netns]
    subprocess.run([*ip, "link", "add", name, "type", "veth", "peer", "name", f"{name}p"],
                   check=True)  # fmt: skip
    try:
        subprocess.run([*ip, "addr", "add", f"{address}/32", "dev", name], check=True)
        subprocess.run([*ip, "link", "set", name, "up"], check=True)
        subprocess.run([*ip, "link", "set", f"{name}p", "up"], check=True)
        yield
    finally:
        subprocess.run([*ip, "link", "del", name], check=False)


def _lxc(lxd_env: LxdEnv, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"LXD_DIR": lxd_env.lxd_dir, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(
        ["lxc", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _wait_for_ipv4(lxd_env: LxdEnv, project: str, name: str, prefix: str) -> str:
    for _ in range(300):
        state = _lxc(lxd_env, "query", f"/1.0/instances/{name}/state?project={project}")
        if prefix in state.stdout:
            return prefix
        time.sleep(0.1)
    pytest.fail(f"{name} got no {prefix}x address")


def test_the_acl_rejects_the_hosts_own_public_address(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    tmp_path: Path,
    setup_names: dict[str, str],
) -> None:
    # 198.51.100.0/24 (TEST-NET-2) stands in for a public address of the host; nothing outside
    # the daemon's namespace is involved.
    public = f"198.51.100.{int(setup_names['network'][-2:], 16) % 250 + 1}"
    config = setup_config(tmp_path, lxd_env, setup_names["project"])
    runner = f"garm-acl-probe-{uuid.uuid4().hex[:6]}"
    project = setup_names["project"]
    with _host_address(lxd_env.netns, public):
        applied = run_operator(provider_bin, *setup_args(config, setup_names), "--apply")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        egress = lxd_object(lxd_client, "network-acls", setup_names["acl"])["egress"]
        host_rules = [rule for rule in egress if public in rule["destination"].split(",")]
        assert [rule["action"] for rule in host_rules] == ["reject"], egress
        try:
            launched = _lxc(lxd_env, "launch", lxd_env.image, runner, "--project", project,
                            "--profile", setup_names["profile"])  # fmt: skip
            assert launched.returncode == 0, launched.stderr
            _wait_for_ipv4(lxd_env, project, runner, setup_names["subnet"].rsplit(".", 1)[0] + ".")
            probe = _lxc(lxd_env, "exec", runner, "--project", project, "--",
                         "ping", "-c", "1", "-W", "2", public)  # fmt: skip
            assert probe.returncode != 0, probe.stdout  # rejected before the host answers
            assert "1 packets transmitted, 0 packets received" in probe.stdout
        finally:
            _lxc(lxd_env, "delete", "--force", runner, "--project", project)

    # The address is gone: a re-run drops it from the ACL (setup's own object, its own rule).
    rerun = run_operator(provider_bin, *setup_args(config, setup_names), "--apply")
    assert f"update network ACL {setup_names['acl']}: egress" in rerun.stdout, rerun.stdout
    egress = lxd_object(lxd_client, "network-acls", setup_names["acl"])["egress"]
    assert not any(public in rule["destination"] for rule in egress)


HOST_ADDRESS_CASES = load_cases(via="host_addresses")


@pytest.mark.parametrize("case", HOST_ADDRESS_CASES, ids=[case.name for case in HOST_ADDRESS_CASES])
def test_addresses_a_server_reports_are_parsed_not_trusted(case: Case) -> None:
    """What a hostile or broken server could report (testdata/adversarial/host_addresses): only
    addresses the ACL can reject are kept. The real test LXD only reports real addresses."""
    from garm_provider_lxd.admin.host_addresses import _add, _strip_port

    found: set[Any] = set()
    _add(found, _strip_port(case.reported))
    assert sorted(str(address) for address in found) == case.spec["expect_kept"]
