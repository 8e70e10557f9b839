"""Operator command logs, run as an operator runs it, on the real test LXD."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import uuid
from pathlib import Path

import pylxd
import pytest
from adversarial_corpus import Case, invocation, load_cases
from conftest import CONTROLLER_ID_KEY, LxdEnv, RunProvider
from corpus_runs import check_outcome, run_case
from e2e.driver import Scenario
from e2e.harness import container_sh
from operator_runs import POOL_KEY, assert_one_line_failure, config_file, run_command

MAX_LOG_OUTPUT = 100 * 1100 + 2000  # 100 lines of at most ~1,000 characters, plus headers
# The e2e scenario's fixtures (a booted runner's cloud-init output).
pytest_plugins = ["e2e.fixtures"]


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
    """A runner that fills its log (70 MB, one endless line): output stays small and quick, and
    only the end of the log is read."""
    put_log(lxd_client, tagged_runner, b"A" * (70 << 20))
    proc = logs(provider_bin, provider_config, tagged_runner)
    assert proc.returncode == 0, proc.stderr
    assert f"{16 << 20} bytes read; the {54 << 20} bytes before them not read" in proc.stdout
    assert len(proc.stdout) < MAX_LOG_OUTPUT
    assert "A" * 1000 + "\u2026" in proc.stdout


def in_instance(lxd_env: LxdEnv, name: str, script: str) -> None:
    """Run script in the instance as runner code would (the test may exec; `logs` never does)."""
    done = container_sh(lxd_env.lxd_dir, name, script)
    assert done.returncode == 0, done.stderr


def make_runner_file(lxd_env: LxdEnv, name: str, wanted: dict[str, str]) -> None:
    """Make what a corpus case's runner_file says at its path in the instance, as runner code
    can: a FIFO, a symbolic link or a directory."""
    path = shlex.quote(wanted["path"])
    make = {
        "fifo": f"mkfifo {path}",
        "symlink": f"ln -s {shlex.quote(wanted.get('target', '/dev/zero'))} {path}",
        "directory": f"mkdir {path}",
    }[wanted["type"]]
    in_instance(lxd_env, name, f"mkdir -p $(dirname {path}) && rm -rf {path} && {make}")


RUNNER_FILE_CASES = [case for case in load_cases(via="operator") if "runner_file" in case.spec]


@pytest.mark.parametrize("case", RUNNER_FILE_CASES, ids=[case.name for case in RUNNER_FILE_CASES])
def test_logs_of_a_hostile_log_file_returns_and_the_runner_still_deletes(
    case: Case,
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    run_provider: RunProvider,
    controller_id: str,
    tagged_runner: str,
    tmp_path: Path,
) -> None:
    """Runner code makes its log a FIFO, a link or a directory (testdata/adversarial/operator):
    `logs` says so at once without opening it, and LXD's file server is not left waiting on
    it, so DeleteInstance works as usual right after.

    Reading a FIFO through LXD's file API waits for a writer (for pylxd's 600 s read timeout,
    while LXD cannot stop the instance): the case's time limit is what fails then.
    """
    make_runner_file(lxd_env, tagged_runner, case.spec["runner_file"])
    call = invocation(case, tmp_path, lxd_env.socket, controller_id, runner=tagged_runner)
    check_outcome(case, run_case(case, call, provider_bin), runner=tagged_runner)
    config = Path(call.argv_tail[call.argv_tail.index("--config") + 1])
    deleted = run_provider("DeleteInstance", config=config, controller_id=controller_id,
                           instance_id=tagged_runner)  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    assert not lxd_client.instances.exists(tagged_runner)


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
