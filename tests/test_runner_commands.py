"""Operator commands status, logs and prune, run as an operator runs them, on the real test LXD.

The status and prune tests work in a project of their own that also holds a crowd of other
instances (untagged, and tagged by other controllers): NIC-less containers with no root file
system, which LXD creates in tens of milliseconds. GARM_TEST_STATUS_CROWD sets how many (2,000
by default). The crowd is kept between runs (its project is named after its size and topped up
when instances are missing), so only the first run on a daemon pays for it: about 80 ms an
instance on this 2-core machine. benches/bench_status.py times 5,000.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pylxd
import pytest
from conftest import (
    CONTROLLER_ID_KEY,
    LxdEnv,
    RunProvider,
    delete_controller_instances,
    run_operator,
)
from e2e.driver import Scenario
from test_e2e import bridge_address, e2e_ca, e2e_image, fake_garm, scenario, timings
from test_incus import IncusEnv, incus_client, incus_env

from garm_provider_lxd.instance_files import NotRegularFile, open_instance_files

POOL_KEY = "user.runner-pool-id"
CROWD = int(os.environ.get("GARM_TEST_STATUS_CROWD", "2000"))
MAX_LOG_OUTPUT = 100 * 1100 + 2000  # 100 lines of at most ~1,000 characters, plus headers
# Fixtures of test_incus.py and test_e2e.py, used here.
__all__ = ["bridge_address", "e2e_ca", "e2e_image", "fake_garm", "incus_client", "incus_env",
           "scenario", "timings"]  # fmt: skip


# status and prune read a project holding thousands of instances: more time than `check`.
run_command = partial(run_operator, timeout=300)


def assert_one_line_failure(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    """Exit 1, nothing on stdout, one short line on stderr that contains expected."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and len(proc.stderr) < 500, proc.stderr
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr, proc.stderr


def config_file(path: Path, socket: str, project: str) -> Path:
    """A provider config for socket and project."""
    path.write_text(
        f"unix_socket_path = {json.dumps(socket)}\nproject_name = {json.dumps(project)}\n"
    )
    return path


# -- a project with a crowd in it ----------------------------------------------------------


@dataclass
class Crowd:
    """A project holding many instances that are not the test's runners."""

    socket: str
    project: str
    size: int
    image: str
    made: list[str] = field(default_factory=list)

    def client(self) -> pylxd.Client:
        """A pylxd client in the project."""
        return pylxd.Client(endpoint=self.socket, project=self.project)

    def plant(
        self, controller: str, pool: str = "", *, running: bool = False, tags: bool = True
    ) -> str:
        """Create a runner-like instance (stopped ones are cheap: no rootfs, no NIC)."""
        name = f"ops-{uuid.uuid4().hex[:10]}"
        config = (
            {CONTROLLER_ID_KEY: controller, POOL_KEY: pool or str(uuid.uuid4())} if tags else {}
        )
        body: dict[str, Any] = {"name": name, "profiles": ["default"], "config": config}
        if running:
            body["source"] = {"type": "image", "alias": self.image}
        else:
            body.update(
                source={"type": "none"}, architecture="x86_64", devices={"eth0": {"type": "none"}}
            )
        instance = self.client().instances.create(body, wait=True)
        self.made.append(name)
        if running:
            instance.start(wait=True)
        return name

    def names(self) -> set[str]:
        """Names of every instance in the project."""
        metadata = self.client().api.instances.get().json()["metadata"]
        return {str(url).rsplit("/", 1)[-1].split("?")[0] for url in metadata}

    def drop(self, names: list[str]) -> None:
        """Force-delete instances by name, four at a time."""
        local = threading.local()

        def delete(name: str) -> None:
            client = getattr(local, "client", None) or self.client()
            local.client = client
            # Not DELETE ?force=true: LXD 5.0 refuses it for a running instance.
            with contextlib.suppress(pylxd.exceptions.NotFound):
                if name.startswith("ops-"):  # the crowd is never started
                    instance = client.instances.get(name)
                    if instance.status != "Stopped":
                        instance.stop(force=True, wait=True)
                response = client.api.instances[name].delete()
                client.operations.wait_for_operation(response.json()["operation"])

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(delete, names))


def _create_crowd(crowd: Crowd) -> None:
    """Create the crowd's instances that are missing (all of them, the first time)."""
    local = threading.local()
    present = crowd.names()

    def create(i: int) -> None:
        client = getattr(local, "client", None) or crowd.client()
        local.client = client
        # Half untagged (someone else's instances), half runners of controllers not under test.
        config = {} if i % 2 else {CONTROLLER_ID_KEY: str(uuid.uuid4()), POOL_KEY: "crowd"}
        body = {
            "name": f"crowd-{i:05d}",
            "source": {"type": "none"},
            "architecture": "x86_64",
            "profiles": ["default"],
            "devices": {"eth0": {"type": "none"}},
            "config": config,
        }
        response = client.api.instances.post(json=body)
        client.operations.wait_for_operation(response.json()["operation"])

    missing = [i for i in range(crowd.size) if f"crowd-{i:05d}" not in present]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(create, missing))


@pytest.fixture(scope="session")
def crowd(lxd_env: LxdEnv, lxd_client: pylxd.Client) -> Iterator[Crowd]:
    """A project sharing the default profiles and images, with CROWD instances in it (kept)."""
    project = f"garm-ops-crowd-{CROWD}"
    if project not in {p.name for p in lxd_client.projects.all()}:
        config = {"features.images": "false", "features.profiles": "false"}
        lxd_client.api.projects.post(json={"name": project, "config": config})
    made = Crowd(lxd_env.socket, project, CROWD, lxd_env.image)
    made.drop(sorted(n for n in made.names() if not n.startswith("crowd-")))  # a killed run's
    _create_crowd(made)
    yield made


@pytest.fixture
def runners(crowd: Crowd) -> Iterator[Crowd]:
    """The crowd; the instances a test plants in it are deleted afterwards."""
    crowd.made.clear()
    yield crowd
    crowd.drop(list(crowd.made))


# -- status ------------------------------------------------------------------------------------


def status_json(provider_bin: str, config: Path, *args: str) -> list[dict[str, Any]]:
    """Run status --json; its one JSON value."""
    proc = run_command(provider_bin, "status", "--config", str(config), "--json", *args)
    assert proc.returncode == 0, proc.stderr
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def test_addresses_come_from_the_bridge_leases(runners: Crowd) -> None:
    """On LXD 5.0 (no state in listings) a running runner's address is read from its bridge's
    DHCP leases, one request per network, instead of one state request per runner."""
    from garm_provider_lxd.runner_status import _leased_addresses

    running = runners.plant(str(uuid.uuid4()), running=True)
    client = runners.client()
    deadline = time.monotonic() + 60
    while (
        not (leased := _leased_addresses(client, {runners.project})).get((runners.project, running))
        and time.monotonic() < deadline
    ):
        time.sleep(1)
    state = client.instances.get(running).state().network or {}
    actual = sorted(a["address"] for a in state["eth0"]["addresses"] if a["family"] == "inet")
    assert sorted(leased[(runners.project, running)]) == actual
    assert not any(name.startswith("crowd-") for _, name in leased)  # NIC-less: no lease


def test_status_lists_exactly_one_controllers_runners_among_a_crowd(
    provider_bin: str, runners: Crowd, tmp_path: Path
) -> None:
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    pool_a, pool_b = str(uuid.uuid4()), str(uuid.uuid4())
    stopped = {runners.plant(mine, pool_a), runners.plant(mine, pool_a)}
    running = runners.plant(mine, pool_b, running=True)
    runners.plant(other, pool_a)
    config = config_file(tmp_path / "c.toml", runners.socket, runners.project)

    listed = status_json(provider_bin, config, "--controller-id", mine)
    assert {item["name"] for item in listed} == {*stopped, running}
    for item in listed:
        assert item["controller_id"] == mine
        assert item["project"] == runners.project
        assert item["created_at"].startswith(time.strftime("%Y-", time.gmtime()))
        assert 0 <= item["age_seconds"] < 3600
        assert item["flags"] == []
    by_name = {item["name"]: item for item in listed}
    assert by_name[running]["status"] == "Running"
    assert by_name[running]["pool_id"] == pool_b
    assert by_name[running]["image"]  # the image's description
    assert {by_name[name]["status"] for name in stopped} == {"Stopped"}

    deadline = time.monotonic() + 60
    while not by_name[running]["ipv4"] and time.monotonic() < deadline:
        time.sleep(1)
        by_name = {i["name"]: i for i in status_json(provider_bin, config, "--controller-id", mine)}
    assert by_name[running]["ipv4"][0].startswith("10."), by_name[running]

    in_pool = status_json(provider_bin, config, "--controller-id", mine, "--pool-id", pool_a)
    assert {item["name"] for item in in_pool} == stopped


def test_status_table_and_summary_for_people(
    provider_bin: str, runners: Crowd, tmp_path: Path
) -> None:
    mine, pool = str(uuid.uuid4()), str(uuid.uuid4())
    names = sorted(runners.plant(mine, pool) for _ in range(2))
    config = config_file(tmp_path / "c.toml", runners.socket, runners.project)
    proc = run_command(provider_bin, "status", "--config", str(config), "--controller-id", mine)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PROJECT", "CONTROLLER", "POOL", "STATUS", "AGE", "IPV4",
                                "IMAGE", "LOCATION", "FLAGS"]  # fmt: skip
    # Aligned: every row's status column starts where the header's does.
    column = lines[0].index("STATUS")
    for name, line in zip(names, lines[1:3], strict=True):
        assert line.startswith(name)
        assert line[column:].startswith("Stopped")
    assert "2 runner instance(s), 0 flagged" in proc.stdout
    assert f"controller {mine}  pool {pool}  Stopped 2" in proc.stdout


def test_status_all_controllers_flags_the_other_controllers(
    provider_bin: str, runners: Crowd, tmp_path: Path
) -> None:
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    ours, theirs = runners.plant(mine), runners.plant(other)
    config = config_file(tmp_path / "c.toml", runners.socket, runners.project)
    listed = status_json(provider_bin, config, "--controller-id", mine, "--all-controllers")
    by_name = {item["name"]: item for item in listed}
    assert by_name[ours]["flags"] == []
    assert by_name[theirs]["flags"] == ["other-controller"]
    # Every tagged instance of the crowd, none of the untagged ones.
    crowd = sorted(int(name[6:]) for name in by_name if name.startswith("crowd-"))
    assert crowd == list(range(0, runners.size, 2))


def test_status_flags_runners_that_look_stuck() -> None:
    """The age rules, on records: the real server cannot make a 30-minute-old instance."""
    from garm_provider_lxd.runner_status import (
        FLAG_NO_ADDRESS,
        FLAG_NOT_RUNNING,
        FLAG_OTHER_CONTROLLER,
        Runner,
        flagged,
    )

    base = Runner("r", "default", "c", "p", "Stopped", "", 0, (), "", "")

    def flags(**changes: Any) -> tuple[str, ...]:
        return flagged(Runner(**{**base.__dict__, **changes}), "c").flags

    assert flags(age_seconds=29 * 60) == ()
    assert flags(age_seconds=31 * 60) == (FLAG_NOT_RUNNING,)
    assert flags(status="Error", age_seconds=31 * 60) == (FLAG_NOT_RUNNING,)
    assert flags(status="Running", age_seconds=31 * 60) == (FLAG_NO_ADDRESS,)
    assert flags(status="Running", age_seconds=9 * 60) == ()
    assert flags(status="Running", age_seconds=31 * 60, ipv4=("10.0.0.2",)) == ()
    assert flags(controller_id="x") == (FLAG_OTHER_CONTROLLER,)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--controller-id", "x;rm -rf /"], "--controller-id: 'x;rm -rf /' is not a GARM id"),
        (["--pool-id", "a b"], "--pool-id: 'a b' is not a GARM id"),
        (["--all-controllers"], "--all-controllers needs --controller-id"),
    ],
)
def test_status_refuses_bad_ids(
    provider_bin: str, tmp_path: Path, args: list[str], expected: str
) -> None:
    # The socket does not exist: the ids are refused before anything is contacted.
    config = config_file(tmp_path / "c.toml", str(tmp_path / "absent.socket"), "default")
    assert_one_line_failure(
        run_command(provider_bin, "status", "--config", str(config), *args), expected
    )


def test_status_escapes_control_characters_in_tags(
    provider_bin: str, runners: Crowd, tmp_path: Path
) -> None:
    mine = str(uuid.uuid4())
    runners.plant(mine, "pool\x1b]0;pwned\x07\x1b[2J")
    config = config_file(tmp_path / "c.toml", runners.socket, runners.project)
    proc = run_command(provider_bin, "status", "--config", str(config), "--controller-id", mine)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "pool\\x1b]0;pwned\\x07\\x1b[2J" in proc.stdout


# -- prune -------------------------------------------------------------------------------------


def test_prune_plans_then_deletes_exactly_the_controllers_stopped_runners(
    provider_bin: str, runners: Crowd, tmp_path: Path
) -> None:
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    stopped = sorted(runners.plant(mine) for _ in range(3))
    running = runners.plant(mine, running=True)
    theirs = runners.plant(other)
    untagged = runners.plant(mine, tags=False)
    config = config_file(tmp_path / "c.toml", runners.socket, runners.project)
    args = ["prune", "--config", str(config), "--controller-id", mine, "--older-than", "0s"]

    plan = run_command(provider_bin, *args)
    assert plan.returncode == 0, plan.stderr
    planned = sorted(
        line.split()[2] for line in plan.stdout.splitlines() if line.startswith("would delete ")
    )
    assert planned == stopped
    assert "3 runner instance(s) of controller" in plan.stdout and "nothing changed" in plan.stdout
    before = runners.names()
    assert {*stopped, running, theirs, untagged} <= before

    young = run_command(provider_bin, *args[:-1], "1h")
    assert young.returncode == 0, young.stderr
    assert "0 runner instance(s)" in young.stdout and "would delete " not in young.stdout

    applied = run_command(provider_bin, *args, "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (
        f"deleted 3 of 3 runner instance(s) of controller {mine}, 1 kept, 0 failed"
        in applied.stdout
    )
    after = runners.names()
    assert not set(stopped) & after
    assert {running, theirs, untagged} <= after
    assert len(after) == len(before) - 3
    assert runners.client().instances.get(running).status == "Running"


@pytest.mark.parametrize("duration", ["3x", "-5m", "1.5h", "m", "30", "9999999999h", "٣m"])
def test_prune_refuses_a_bad_duration(provider_bin: str, tmp_path: Path, duration: str) -> None:
    config = config_file(tmp_path / "c.toml", str(tmp_path / "absent.socket"), "default")
    proc = run_command(provider_bin, "prune", "--config", str(config), "--controller-id",
                       str(uuid.uuid4()), f"--older-than={duration}")  # fmt: skip
    assert_one_line_failure(proc, "--older-than:")


def test_prune_needs_a_controller(provider_bin: str, tmp_path: Path) -> None:
    config = config_file(tmp_path / "c.toml", str(tmp_path / "absent.socket"), "default")
    proc = run_command(provider_bin, "prune", "--config", str(config))
    assert_one_line_failure(proc, "--controller-id")


# -- logs --------------------------------------------------------------------------------------


@pytest.fixture
def tagged_runner(lxd_env: LxdEnv, lxd_client: pylxd.Client, controller_id: str) -> str:
    """A running busybox container tagged as one of controller_id's runners (deleted after)."""
    name = f"ops-logs-{uuid.uuid4().hex[:8]}"
    config = {CONTROLLER_ID_KEY: controller_id, POOL_KEY: str(uuid.uuid4())}
    body = {"name": name, "source": {"type": "image", "alias": lxd_env.image}, "config": config}
    lxd_client.instances.create(body, wait=True).start(wait=True)
    return name


def put_log(client: pylxd.Client, name: str, data: bytes) -> None:
    """Write /var/log/cloud-init-output.log in the instance, as runner code could."""
    instance = client.instances.get(name)
    with contextlib.suppress(pylxd.exceptions.LXDAPIException):
        instance.files.mk_dir("/var/log")
    instance.files.put("/var/log/cloud-init-output.log", data)


def logs(provider_bin: str, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the logs command."""
    return run_command(provider_bin, "logs", "--config", str(config), *args)


def test_logs_prints_status_lines_and_the_tail_escaped(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, tagged_runner: str
) -> None:
    hostile = "\x1b]0;pwned\x07\x1b[2J\rover\u202eevil"
    text = "".join(f"line {i}\n" for i in range(300))
    text += "garm-runner-status: installing: installing runner\n"
    text += f"garm-runner-status: failed: {hostile}\n" + hostile + "\n"
    put_log(lxd_client, tagged_runner, text.encode())

    proc = logs(provider_bin, provider_config, tagged_runner, "--lines", "5")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for raw in ("\x1b", "\x07", "\r", "\u202e"):
        assert raw not in out
    assert "garm-runner-status: installing: installing runner\n" in out
    escaped = "\\x1b]0;pwned\\x07\\x1b[2J\\x0dover\\u202eevil"
    assert f"garm-runner-status: failed: {escaped}\n" in out
    section = out.split("== /var/log/cloud-init-output.log (last 5 lines")[1]
    assert "\nline 298\nline 299\ngarm-runner-status: installing" in section
    assert "line 297\n" not in section


def test_logs_bounds_a_huge_log(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, tagged_runner: str
) -> None:
    """A runner that fills its log (70 MB, one endless line): output stays small and quick."""
    put_log(lxd_client, tagged_runner, b"A" * (70 << 20))
    proc = logs(provider_bin, provider_config, tagged_runner)
    assert proc.returncode == 0, proc.stderr
    assert "stopped reading at 64 MiB" in proc.stdout
    assert len(proc.stdout) < MAX_LOG_OUTPUT
    assert "A" * 1000 + "\u2026" in proc.stdout


def test_logs_refuses_a_symlinked_log(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, tagged_runner: str
) -> None:
    instance = lxd_client.api.instances[tagged_runner]
    with contextlib.suppress(pylxd.exceptions.LXDAPIException):
        instance.files.post(params={"path": "/var/log"}, headers={"X-LXD-type": "directory"})
    instance.files.post(
        params={"path": "/var/log/cloud-init-output.log"},
        data=b"/dev/zero",
        headers={"X-LXD-type": "symlink"},
    )
    proc = logs(provider_bin, provider_config, tagged_runner)
    assert_one_line_failure(proc, "is a symbolic link, not a regular file; not read")


def in_instance(lxd_env: LxdEnv, name: str, script: str) -> None:
    """Run script in the instance as runner code would (the test may exec; `logs` never does)."""
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LXD_DIR": lxd_env.lxd_dir}
    subprocess.run(["lxc", "exec", name, "--", "sh", "-c", script], env=env, check=True,
                   capture_output=True, timeout=60)  # fmt: skip


def test_logs_of_a_fifo_returns_and_the_runner_still_deletes(
    provider_bin: str,
    provider_config: Path,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    run_provider: RunProvider,
    controller_id: str,
    tagged_runner: str,
) -> None:
    """Runner code makes its log a FIFO: `logs` says so at once without opening it, and LXD's
    file server is not left waiting on it, so DeleteInstance works as usual right after.

    Reading the FIFO through LXD's file API waits for a writer (for pylxd's 600 s read timeout,
    while LXD cannot stop the instance): the timeout below is what fails then.
    """
    in_instance(lxd_env, tagged_runner, "mkdir -p /var/log; mkfifo /var/log/cloud-init-output.log")
    proc = run_operator(provider_bin, "logs", "--config", str(provider_config), tagged_runner,
                        timeout=60)  # fmt: skip
    assert_one_line_failure(
        proc,
        f"/var/log/cloud-init-output.log in instance {tagged_runner} is a FIFO, "
        "not a regular file; not read",
    )
    deleted = run_provider("DeleteInstance", config=provider_config, controller_id=controller_id,
                           instance_id=tagged_runner)  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    assert not lxd_client.instances.exists(tagged_runner)


def test_logs_refuses_a_fifo_swapped_in_after_the_check(
    lxd_env: LxdEnv, lxd_client: pylxd.Client, tagged_runner: str
) -> None:
    """The race a runner could try: the path became a FIFO between the lstat and the open. The
    open does not wait (read-write), and the open handle's own type turns it away."""
    in_instance(lxd_env, tagged_runner, "mkdir -p /var/log && mkfifo /var/log/swapped")
    with open_instance_files(lxd_client.api, tagged_runner, 10.0) as files:
        with pytest.raises(NotRegularFile, match=r"^/var/log/swapped is a FIFO, not a regular"):
            files.read_opened("/var/log/swapped", 1 << 20, lambda chunk: None)
        assert files.file_type("/var/log/swapped") == "a FIFO"
        assert files.file_type("/var/log/absent") is None


def test_logs_of_a_stopped_container(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, tagged_runner: str
) -> None:
    """A stopped container's files are still served: its log is what is left to read."""
    put_log(lxd_client, tagged_runner, b"garm-runner-status: idle: runner successfully installed\n")
    lxd_client.instances.get(tagged_runner).stop(force=True, wait=True)
    proc = logs(provider_bin, provider_config, tagged_runner)
    assert proc.returncode == 0, proc.stderr
    assert ", Stopped, controller " in proc.stdout
    assert "garm-runner-status: idle: runner successfully installed" in proc.stdout


@pytest.mark.e2e
def test_logs_shows_a_booted_runners_cloud_init_output(
    provider_bin: str, scenario: Scenario, provider_config: Path
) -> None:
    """A runner booted from the cloud-init image: its statuses and cloud-init's own output."""
    # CreateInstance as GARM runs it; the default install script against the fake GARM.
    runner = scenario.wait(scenario.create("logs", jit=True))
    assert runner.final.get("status") == "idle", runner.statuses
    proc = logs(provider_bin, provider_config, runner.name)
    assert proc.returncode == 0, proc.stderr
    statuses = proc.stdout.split("== install status")[1].split("\n== ")[0].splitlines()
    assert "garm-runner-status: installing: installing runner" in statuses
    assert statuses[-1] == "garm-runner-status: idle: runner successfully installed"
    output = proc.stdout.split("== /var/log/cloud-init-output.log (last ")[1]
    assert "Cloud-init v. " in output  # cloud-init's own lines, not only the script's
    assert scenario.delete(runner).returncode == 0


def test_logs_fails_cleanly_for_a_missing_instance(
    provider_bin: str, provider_config: Path
) -> None:
    proc = logs(provider_bin, provider_config, f"ops-missing-{uuid.uuid4().hex[:6]}")
    assert_one_line_failure(proc, "not found in project(s) default")


def test_logs_refuses_an_instance_the_provider_did_not_tag(
    provider_bin: str, provider_config: Path, lxd_env: LxdEnv, lxd_client: pylxd.Client
) -> None:
    name = f"ops-untagged-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "source": {"type": "image", "alias": lxd_env.image}}
    lxd_client.instances.create(body, wait=True)
    try:
        proc = logs(provider_bin, provider_config, name)
        assert_one_line_failure(proc, f"instance {name} is not a runner of garm-provider-lxd")
    finally:
        lxd_client.instances.get(name).delete(wait=True)


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["../../etc"], "is not valid for LXD"), (["ok", "--lines", "0"], "--lines: must be between")],
)
def test_logs_refuses_bad_arguments(
    provider_bin: str, tmp_path: Path, args: list[str], expected: str
) -> None:
    config = config_file(tmp_path / "c.toml", str(tmp_path / "absent.socket"), "default")
    assert_one_line_failure(logs(provider_bin, config, *args), expected)


def test_help_lists_the_runner_commands(provider_bin: str) -> None:
    proc = run_command(provider_bin, "--help")
    assert proc.returncode == 0
    for command in ("status", "logs", "prune"):
        assert command in proc.stdout


# -- Incus -------------------------------------------------------------------------------------


@pytest.mark.incus
def test_status_and_prune_on_incus(
    provider_bin: str, incus_env: IncusEnv, incus_client: pylxd.Client, tmp_path: Path
) -> None:
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    made: list[str] = []

    def plant(controller: str, *, running: bool = False, tags: bool = True) -> str:
        name = f"ops-incus-{uuid.uuid4().hex[:8]}"
        config = {CONTROLLER_ID_KEY: controller, POOL_KEY: "p"} if tags else {}
        body: dict[str, Any] = {"name": name, "config": config}
        if running:
            body["source"] = {"type": "image", "alias": incus_env.image}
        else:
            body.update(source={"type": "none"}, architecture="x86_64")
            body["devices"] = {"eth0": {"type": "none"}}
        instance = incus_client.instances.create(body, wait=True)
        made.append(name)
        if running:
            instance.start(wait=True)
        return name

    try:
        stopped = sorted(plant(mine) for _ in range(2))
        running = plant(mine, running=True)
        theirs, untagged = plant(other), plant(mine, tags=False)
        config = config_file(tmp_path / "c.toml", incus_env.socket, "default")

        listed = status_json(provider_bin, config, "--controller-id", mine)
        assert sorted(item["name"] for item in listed) == sorted([*stopped, running])
        assert {i["name"]: i["status"] for i in listed}[running] == "Running"

        args = ["prune", "--config", str(config), "--controller-id", mine, "--older-than", "0s"]
        plan = run_command(provider_bin, *args)
        assert plan.returncode == 0, plan.stderr
        assert sorted(line.split()[2] for line in plan.stdout.splitlines()
                      if line.startswith("would delete ")) == stopped  # fmt: skip
        assert all(incus_client.instances.exists(name) for name in made)
        applied = run_command(provider_bin, *args, "--apply")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert [incus_client.instances.exists(name) for name in made] == [
            False, False, True, True, True,
        ]  # fmt: skip
        assert incus_client.instances.get(running).status == "Running"
        assert {running, theirs, untagged} <= {i.name for i in incus_client.instances.all()}
    finally:
        for controller in (mine, other):
            delete_controller_instances(incus_client, controller)
        with contextlib.suppress(pylxd.exceptions.NotFound):
            incus_client.instances.get(made[-1]).delete(wait=True)
