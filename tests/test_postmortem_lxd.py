"""Post-mortems at DeleteInstance, against the real LXD daemon.

The runners are busybox containers created by the provider (as GARM would); the cloud-init
output a runner would have written is put into them with LXD's file API, and the hostile
shapes of it (testdata/adversarial/diagnostics) are made with `lxc exec` by the test. The
provider itself never execs.
"""

from __future__ import annotations

import gzip
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pylxd
import pytest
from conftest import (
    REPO_ROOT,
    LxdEnv,
    RecordingLxd,
    RunProvider,
    create_runner,
    garm_env,
    run_operator,
    socket_config,
)
from e2e.harness import container_sh

from garm_provider_lxd.config import parse_config
from garm_provider_lxd.errors import LxdError
from garm_provider_lxd.lxd import REGULAR_FILE, Lxd, LxdTimes
from garm_provider_lxd.postmortem import CLOUD_INIT_OUTPUT, LOG_TAIL_BYTES, inspect_before_delete

CASES_FILE = REPO_ROOT / "testdata" / "adversarial" / "diagnostics" / "cases.jsonl"
RUNNER_CASES = [
    case
    for case in (json.loads(line) for line in CASES_FILE.read_text().splitlines() if line.strip())
    if "command_log_special" not in case
]
FAILED_LOG = (
    "Cloud-init v. 22.4.2 running 'modules:final'\n"
    "garm-runner-status: installing: downloading tools from http://garm/tools/runner.tgz\n"
    "curl: (22) The requested URL returned error: 404\n"
    "garm-runner-status: failed: failed to download tools\n"
    "runner install failed: failed to download tools\n"
)
HEALTHY_LOG = "garm-runner-status: installing: x\ngarm-runner-status: idle: runner installed\n"
# How cloud-init's final stage starts on the console, before the user data's output.
FINAL_STAGE = "Cloud-init v. 22.4.2 running 'modules:final' at Mon, 07 Dec 2026 04:14:30 +0000.\n"


@pytest.fixture
def diag_config(tmp_path: Path, lxd_env: LxdEnv) -> Path:
    """A config for the test daemon with post-mortems in tmp_path/postmortems and the record."""
    path = socket_config(tmp_path / "provider.toml", lxd_env.socket)
    with path.open("a") as stream:
        stream.write(
            f'\n[diagnostics]\npostmortem_dir = "{tmp_path / "postmortems"}"\n'
            f'command_log = "{tmp_path / "commands.log"}"\n'
        )
    return path


def delete_record(tmp_path: Path, name: str) -> dict[str, Any]:
    """The command record's line of the DeleteInstance of runner name."""
    lines = (tmp_path / "commands.log").read_text().splitlines()
    (line,) = [r for r in map(json.loads, lines) if r["command"] == "DeleteInstance"
               and r["instance"] == name]  # fmt: skip
    return dict(line)


def runner_with_log(
    run_provider: RunProvider,
    config: Path,
    controller_id: str,
    lxd_env: LxdEnv,
    case: dict[str, Any],
) -> tuple[str, str]:
    """A running runner whose cloud-init output is the case's; (name, its instance token)."""
    proc, name, boot = create_runner(run_provider, config, controller_id)
    assert proc.returncode == 0, proc.stderr.decode()
    assert container_sh(lxd_env.lxd_dir, name, "mkdir -p /var/log").returncode == 0
    special = case.get("runner_log_special", "")
    if special == "fifo":
        script = f"mkfifo {CLOUD_INIT_OUTPUT}"
    elif special == "directory":
        script = f"mkdir {CLOUD_INIT_OUTPUT}"
    elif special.startswith("symlink:"):
        script = f"ln -s {special.split(':', 1)[1]} {CLOUD_INIT_OUTPUT}"
    else:
        text, count = case.get("runner_log_repeat", ["", 0])
        data = (text * count + case.get("runner_log", "")).encode()
        client = pylxd.Client(endpoint=lxd_env.socket)
        client.instances.get(name).files.put(CLOUD_INIT_OUTPUT, data)
        script = "true"
    assert container_sh(lxd_env.lxd_dir, name, script).returncode == 0
    return name, str(boot["instance-token"])


def to_console(lxd_env: LxdEnv, name: str, text: str) -> None:
    """Print text on the instance's console, as cloud-init's final stage does."""
    script = f"printf '%s' {shlex.quote(text)} > /dev/console"
    assert container_sh(lxd_env.lxd_dir, name, script).returncode == 0


def delete(run_provider: RunProvider, config: Path, controller_id: str, name: str) -> Any:
    # The timeout only keeps a blocked delete (15 minutes with a FIFO) from hanging the run.
    done = run_provider(
        "DeleteInstance", config=config, controller_id=controller_id, instance_id=name, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    return done


def saved(tmp_path: Path) -> list[Path]:
    directory = tmp_path / "postmortems"
    return sorted(directory.iterdir()) if directory.exists() else []


def test_failed_runner_leaves_a_redacted_postmortem_that_logs_shows(
    tmp_path: Path,
    diag_config: Path,
    run_provider: RunProvider,
    controller_id: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    provider_bin: str,
) -> None:
    case = {"runner_log": FAILED_LOG}
    name, token = runner_with_log(run_provider, diag_config, controller_id, lxd_env, case)
    to_console(lxd_env, name, FINAL_STAGE + FAILED_LOG)
    done = delete(run_provider, diag_config, controller_id, name)
    assert done.stderr == b""
    assert not lxd_client.instances.exists(name)
    (path,) = saved(tmp_path)
    assert path.name.startswith(f"{name}.") and path.name.endswith(".json.gz")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    raw = gzip.decompress(path.read_bytes()).decode()
    assert token not in raw
    document = json.loads(raw)
    reason = "last install status: runner install failed: failed to download tools"
    assert document["reason"] == reason
    assert delete_record(tmp_path, name)["did_not_come_up"] == reason  # for `stats`
    assert document["controller"] == controller_id
    config = document["instance"]["config"]
    assert not [key for key in config if "user-data" in key or key.startswith("cloud-init.")]
    assert any("user-data" in key for key in document["instance"]["config_dropped"])
    assert document["state"]["status"] == "Running"
    assert "returned error: 404" in document["cloud_init_output"]["tail"]
    assert document["install_status"][-1] == "runner install failed: failed to download tools"
    # The console read to judge the runner (a failure: the file was read too), kept once read.
    assert "garm-runner-status: failed: failed to download tools" in document["console"]["tail"]
    shown = run_operator(provider_bin, "logs", "--config", str(diag_config), name)
    assert shown.returncode == 0, shown.stderr
    assert "is gone; post-mortem saved" in shown.stdout
    assert "curl: (22) The requested URL returned error: 404" in shown.stdout


def test_healthy_runner_leaves_nothing_and_imports_nothing_heavy(
    tmp_path: Path,
    diag_config: Path,
    run_provider: RunProvider,
    controller_id: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
) -> None:
    """Judged from its console alone (no file read); once the console is drained, from its file."""
    case = {"runner_log": HEALTHY_LOG}
    name, _ = runner_with_log(run_provider, diag_config, controller_id, lxd_env, case)
    to_console(lxd_env, name, FINAL_STAGE + HEALTHY_LOG)
    config = parse_config(diag_config.read_bytes())
    lxd = RecordingLxd(config)
    lxd.sent = []
    warnings: list[str] = []
    meta = lxd.get_instance(name)[0]
    lxd.sent.clear()
    inspect_before_delete(lxd, name, meta, config, warnings.append)
    assert (lxd.sent, warnings) == ([("GET", f"/1.0/instances/{name}/console")], [])
    # LXD's console GET drained the ring buffer: this delete finds the runner healthy by its
    # cloud-init output. In a process of its own, to see what the healthy path imports: nothing
    # heavy.
    env = garm_env("DeleteInstance", diag_config, controller_id, instance_id=name)
    code = (
        "import sys\nfrom garm_provider_lxd.cli import main\n"
        f"assert main([], environ={env!r}) == 0\n"
        "print(' '.join(m for m in ('re', 'gzip', 'json', 'typing') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "\n", "")
    assert not lxd_client.instances.exists(name)
    assert saved(tmp_path) == []
    assert "did_not_come_up" not in delete_record(tmp_path, name)


@pytest.mark.parametrize("case", RUNNER_CASES, ids=[c["name"] for c in RUNNER_CASES])
def test_hostile_cloud_init_output(
    tmp_path: Path,
    diag_config: Path,
    run_provider: RunProvider,
    controller_id: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    provider_bin: str,
    case: dict[str, Any],
) -> None:
    """The delete is neither blocked nor failed; what is saved is bounded and redacted."""
    name, token = runner_with_log(run_provider, diag_config, controller_id, lxd_env, case)
    delete(run_provider, diag_config, controller_id, name)
    assert not lxd_client.instances.exists(name)
    (path,) = saved(tmp_path)
    raw = gzip.decompress(path.read_bytes()).decode()
    document = json.loads(raw)
    assert case["expect_reason"] in document["reason"]
    for secret in [token, *case.get("secret", [])]:
        assert secret not in raw
    output = document["cloud_init_output"]
    if case.get("expect_cut"):
        assert (output["bytes_read"], output["complete"]) == (LOG_TAIL_BYTES, False)
        assert os.path.getsize(path) < 1 << 20
    if case.get("expect_shown"):
        shown = run_operator(provider_bin, "logs", "--config", str(diag_config), name)
        assert shown.returncode == 0, shown.stderr
        for text in case["expect_shown"]:
            assert text in shown.stdout
        assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout


def test_a_fifo_at_the_log_path_is_never_opened_nor_written(
    tmp_path: Path,
    diag_config: Path,
    run_provider: RunProvider,
    controller_id: str,
    lxd_env: LxdEnv,
) -> None:
    """The FIFO is seen by its type before anything opens it: no read waits on it, and nothing
    is sent to open it for writing (the old file API read blocked until a POST unjammed it)."""
    case = {"runner_log_special": "fifo"}
    name, _ = runner_with_log(run_provider, diag_config, controller_id, lxd_env, case)
    config = parse_config(diag_config.read_bytes())
    lxd = RecordingLxd(config)
    lxd.sent = []
    warnings: list[str] = []
    try:
        meta = lxd.get_instance(name)[0]
        lxd.sent.clear()
        LxdTimes.requests, LxdTimes.seconds = 0, 0.0
        inspect_before_delete(lxd, name, meta, config, warnings.append)
        counted = (LxdTimes.requests, LxdTimes.seconds)
    finally:
        delete(run_provider, diag_config, controller_id, name)
    assert warnings == []
    base = f"/1.0/instances/{name}"
    assert lxd.sent == [
        ("GET", f"{base}/console"),
        ("SFTP", CLOUD_INIT_OUTPUT),
        ("GET", f"{base}/state"),
    ]
    # The command record counts each of the three kinds of exchange (a bounded read, an SFTP
    # session, a plain request), with the time spent on them.
    assert counted[0] == len(lxd.sent) and counted[1] > 0
    path = saved(tmp_path)[0]  # this one's; the delete's (same reason) is named for its second
    document = json.loads(gzip.decompress(path.read_bytes()))
    assert document["reason"] == f"{CLOUD_INIT_OUTPUT} is a FIFO, not a regular file"
    assert document["cloud_init_output"]["note"] == "is a FIFO, not a regular file"


def test_a_fifo_swapped_in_after_the_lstat_opens_at_once_and_is_not_read(
    tmp_path: Path,
    diag_config: Path,
    run_provider: RunProvider,
    controller_id: str,
    lxd_env: LxdEnv,
) -> None:
    """The race a runner could try: the path becomes a FIFO between the lstat and the open
    (stood for by skipping the lstat). The read-write open does not wait for a writer, and the
    open handle's type turns it away; a regular file next to it reads whole."""
    case = {"runner_log": HEALTHY_LOG}
    name, _ = runner_with_log(run_provider, diag_config, controller_id, lxd_env, case)
    lxd = Lxd(parse_config(diag_config.read_bytes()))
    try:
        assert container_sh(lxd_env.lxd_dir, name, "mkfifo /var/log/swapped").returncode == 0
        swapped = lxd.read_file_tail(name, "/var/log/swapped", 1 << 20, 30.0, lstat_first=False)
        assert swapped == ("a FIFO", b"", 0)
        regular = lxd.read_file_tail(name, CLOUD_INIT_OUTPUT, 1 << 20, 30.0, lstat_first=False)
        assert regular == (REGULAR_FILE, HEALTHY_LOG.encode(), len(HEALTHY_LOG))
        tail = lxd.read_file_tail(name, CLOUD_INIT_OUTPUT, 20, 30.0)
        assert tail == (REGULAR_FILE, HEALTHY_LOG.encode()[-20:], len(HEALTHY_LOG))
        assert lxd.read_file_tail(name, "/var/log/absent", 20, 30.0) == (None, b"", 0)
    finally:
        delete(run_provider, diag_config, controller_id, name)


def test_reading_a_file_of_a_missing_instance_is_one_lxd_error(diag_config: Path) -> None:
    lxd = Lxd(parse_config(diag_config.read_bytes()))
    with pytest.raises(LxdError, match=r"/sftp\): HTTP 404: ") as raised:
        lxd.read_file_tail("pm-no-such-instance", CLOUD_INIT_OUTPUT, 10, 30.0)
    assert "\n" not in str(raised.value)


def test_a_postmortem_that_cannot_be_saved_is_one_warning_and_the_delete_goes_on(
    tmp_path: Path,
    lxd_env: LxdEnv,
    run_provider: RunProvider,
    controller_id: str,
    lxd_client: pylxd.Client,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the post-mortem directory should be\n")
    config = socket_config(tmp_path / "provider.toml", lxd_env.socket)
    with config.open("a") as stream:
        stream.write(f'\n[diagnostics]\npostmortem_dir = "{blocker}"\n')
    name, _ = runner_with_log(
        run_provider, config, controller_id, lxd_env, {"runner_log": FAILED_LOG}
    )
    done = delete(run_provider, config, controller_id, name)
    assert not lxd_client.instances.exists(name)
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and f"warning: post-mortem of {name} not saved" in lines[0], lines
