"""The command record ([diagnostics] command_log): its line, its failure modes, its rotation.

Driven through the installed program; none of these commands reaches LXD (ValidatePoolInfo
with no image checks the pool's specs only; the other commands fail before connecting).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT, garm_env
from garm_harness import run_provider as run_once

CASES_FILE = REPO_ROOT / "testdata" / "adversarial" / "diagnostics" / "cases.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text().splitlines() if line.strip()]
LOG_PATH_CASES = [case for case in CASES if "command_log_special" in case]
SECRET_TOKEN = "tok-" + "s3cr3t" * 4


def write_config(directory: Path, log: Path | str, extra: str = "") -> Path:
    """A config whose socket does not exist, with the command log at log."""
    path = directory / "provider.toml"
    path.write_text(
        f'unix_socket_path = "{directory}/no.socket"\n[diagnostics]\ncommand_log = "{log}"\n{extra}'
    )
    return path


def run(provider_bin: str, config: Path, command: str = "ValidatePoolInfo", **kw: Any) -> Any:
    env = garm_env(command, config, "controller-1", pool_id="pool-1", **kw)
    return run_once(provider_bin, env, b"", timeout=60)


def records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_each_command_appends_one_line(tmp_path: Path, provider_bin: str) -> None:
    log = tmp_path / "commands.log"
    config = write_config(tmp_path, log)
    assert run(provider_bin, config).returncode == 0
    failed = run(provider_bin, config, "GetInstance", instance_id="runner-1")
    assert failed.returncode == 1
    ok, bad = records(log)
    assert ok["command"] == "ValidatePoolInfo"
    assert (ok["controller"], ok["pool"], ok["exit"], ok["interface"]) == (
        "controller-1", "pool-1", 0, "v0.1.1",
    )  # fmt: skip
    assert "error" not in ok
    assert ok["time"].endswith("Z") and ok["wall"] >= ok["lxd"] >= 0
    assert (bad["command"], bad["instance"], bad["exit"]) == ("GetInstance", "runner-1", 1)
    assert "no.socket" in bad["error"]
    assert bad["error"] in failed.stderr.decode()
    assert oct(log.stat().st_mode & 0o777) == "0o600"


def test_create_records_the_instance_but_nothing_from_stdin(
    tmp_path: Path, provider_bin: str
) -> None:
    from garm_harness import bootstrap_payload

    log = tmp_path / "commands.log"
    config = write_config(tmp_path, log)
    boot = bootstrap_payload("runner-7", **{"instance-token": SECRET_TOKEN})
    env = garm_env("CreateInstance", config, "controller-1", pool_id=boot["pool_id"])
    done = run_once(provider_bin, env, json.dumps(boot).encode(), timeout=60)
    assert done.returncode == 1
    (line,) = records(log)
    assert (line["command"], line["instance"], line["pool"]) == (
        "CreateInstance", "runner-7", boot["pool_id"],
    )  # fmt: skip
    assert SECRET_TOKEN not in log.read_text()


def test_no_command_log_writes_nothing(tmp_path: Path, provider_bin: str) -> None:
    config = tmp_path / "provider.toml"
    config.write_text(f'unix_socket_path = "{tmp_path}/no.socket"\n')
    assert run(provider_bin, config).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["provider.toml"]


def _special_path(tmp_path: Path, kind: str) -> Path:
    """A command_log path of the given adversarial kind."""
    if kind == "fifo":
        path = tmp_path / "fifo.log"
        os.mkfifo(path)
    elif kind == "symlink":
        (tmp_path / "victim").write_text("precious\n")
        path = tmp_path / "link.log"
        path.symlink_to(tmp_path / "victim")
    elif kind == "directory":
        path = tmp_path / "dir.log"
        path.mkdir()
    elif kind == "missing-directory":
        path = tmp_path / "absent" / "commands.log"
    else:
        path = Path(kind)
    return path


@pytest.mark.parametrize("case", LOG_PATH_CASES, ids=[c["name"] for c in LOG_PATH_CASES])
def test_unusable_command_log_is_one_warning_and_the_command_succeeds(
    tmp_path: Path, provider_bin: str, case: dict[str, Any]
) -> None:
    path = _special_path(tmp_path, case["command_log_special"])
    done = run(provider_bin, write_config(tmp_path, path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and case["expect_warning"] in lines[0], lines
    if case["command_log_special"] == "symlink":
        assert (tmp_path / "victim").read_text() == "precious\n"


def test_rotation_under_200_concurrent_commands_tears_no_line(
    tmp_path: Path, provider_bin: str
) -> None:
    """200 provider processes at once, rotating every few lines: every line whole, none lost."""
    log = tmp_path / "commands.log"
    # keep is larger than the number of rotations, so every line must still be somewhere.
    config = write_config(tmp_path, log, "command_log_max_bytes = 2000\ncommand_log_keep = 400\n")
    env = garm_env("ValidatePoolInfo", config, "controller-1", pool_id="pool-1")
    processes = [
        subprocess.Popen(
            [provider_bin],
            env={**env, "GARM_POOL_ID": f"pool-{i}"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(200)
    ]
    errors = [p.communicate(timeout=300)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 200, errors[:3]
    assert [e for e in errors if e] == []
    files = [p for p in tmp_path.iterdir() if p.name.startswith("commands.log")]
    assert len(files) > 10  # it did rotate, many times
    pools = []
    for path in files:
        if path.name.endswith(".lock"):
            continue
        data = path.read_bytes()
        assert data.endswith(b"\n")
        for line in data.split(b"\n")[:-1]:
            pools.append(json.loads(line)["pool"])  # a torn line would not parse
    assert sorted(pools) == sorted(f"pool-{i}" for i in range(200))


def test_static_commands_do_not_read_the_config(tmp_path: Path) -> None:
    """GetVersion and the schemas read no config, so they are not recorded (documented)."""
    log = tmp_path / "commands.log"
    config = write_config(tmp_path, log)
    env = {"GARM_COMMAND": "GetVersion", "GARM_PROVIDER_CONFIG_FILE": str(config)}
    done = subprocess.run(
        [sys.executable, "-m", "garm_provider_lxd"], env=env, capture_output=True, check=False
    )
    assert done.returncode == 0
    assert not log.exists()
