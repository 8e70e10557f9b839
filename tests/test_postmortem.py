"""Post-mortem rules that need no LXD: the came-up decision, redaction, the file and retention."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, cast

import pytest

from garm_provider_lxd.config import Config, parse_config
from garm_provider_lxd.errors import LxdTimeoutError
from garm_provider_lxd.postmortem import (
    MAX_CONSOLE_BYTES,
    OUT_OF_TIME,
    POSTMORTEM_SECONDS,
    came_up_by_console,
    did_not_come_up,
    inspect_before_delete,
    redact_secrets,
    redacted_instance,
    save,
)

if TYPE_CHECKING:
    from garm_provider_lxd.lxd import Lxd

FINISHED = b"Cloud-init v. 22.4.2 finished at Mon, 07 Dec 2026 00:09:51 +0000. Up 5.3 seconds\n"
FINAL = b"[16200.2] cloud-init[156]: Cloud-init v. 22.4.2 running 'modules:final' at Mon, 07 Dec\n"
IDLE = b"[16201.2] cloud-init[156]: garm-runner-status: idle: runner installed\n"


@pytest.mark.parametrize(
    ("status", "log", "reason"),
    [
        ("Stopped", b"garm-runner-status: idle: ok\n", "instance is Stopped"),
        ("Running", None, "cloud-init never ran"),
        ("Running", b"garm-runner-status: installing: x\ngarm-runner-status: idle: ok\n", ""),
        ("Running", b"garm-runner-status: idle: ok\ngarm-runner-status: failed: gone\n",
         "last install status: garm-runner-status: failed: gone"),
        ("Running", b"garm-runner-status: installing: downloading tools\n" + FINISHED,
         "last install status: garm-runner-status: installing"),
        ("Running", b"+ /tmp/real-install.sh\n+ rm -f /tmp/real-install.sh\n" + FINISHED, ""),
        ("Running", b"+ /tmp/real-install.sh\ncurl: (22) error: 404\n" + FINISHED,
         "GARM's install script did not succeed"),
        ("Running", b"some other script\n" + FINISHED, ""),
        ("Running", b"some other script, still running\n", "cloud-init did not finish"),
    ],
)  # fmt: skip
def test_came_up_is_decided_from_what_the_instance_shows(
    status: str, log: bytes | None, reason: str
) -> None:
    found = did_not_come_up(status, log)
    assert (found == "") if not reason else (reason in found), found


@pytest.mark.parametrize(
    ("console", "note", "came_up"),
    [
        (b"boot\n" + FINAL + IDLE + FINISHED, "", True),
        (FINAL + b"+ /tmp/real-install.sh\n+ rm -f /tmp/real-install.sh\n" + FINISHED, "", True),
        (FINAL + b"some other script\n" + FINISHED, "", True),
        # Not decisive: the file decides. No start of the final stage (a ring buffer that
        # dropped it could have dropped the wrapper's start too), only before it, a failure
        # after it, a wrapper that did not succeed, a console cut at the bound, a read error.
        (IDLE + FINISHED, "", False),
        (IDLE + FINAL + b"some other script, still running\n", "", False),
        (FINAL + IDLE + b"garm-runner-status: failed: gone\n" + FINISHED, "", False),
        (FINAL + b"+ /tmp/real-install.sh\ncurl: (22) error: 404\n" + FINISHED, "", False),
        (FINAL + IDLE + b"x" * MAX_CONSOLE_BYTES, "", False),
        (b"", "not read (HTTP 500)", False),
    ],
)  # fmt: skip
def test_the_console_decides_only_when_it_shows_the_runner_came_up(
    console: bytes, note: str, came_up: bool
) -> None:
    assert came_up_by_console(console, note) is came_up


def test_config_keeps_only_lxd_keys_and_tags() -> None:
    meta = {
        "name": "r1",
        "status": "Running",
        "description": "free text",
        "expanded_config": {"user.user-data": "secret"},
        "config": {
            "user.user-data": "#cloud-config token",
            "cloud-init.user-data": "token",
            "cloud-init.vendor-data": "x",
            "environment.GITHUB_TOKEN": "ghp_x",
            "user.runner-controller-id": "c",
            "user.runner-pool-id": "p",
            "limits.cpu": "2",
            "volatile.uuid": "u",
        },
    }
    kept = redacted_instance(meta)
    assert kept["config"] == {
        "user.runner-controller-id": "c",
        "user.runner-pool-id": "p",
        "limits.cpu": "2",
        "volatile.uuid": "u",
    }
    assert kept["config_dropped"] == [
        "cloud-init.user-data",
        "cloud-init.vendor-data",
        "environment.GITHUB_TOKEN",
        "user.user-data",
    ]
    assert "expanded_config" not in kept and "description" not in kept
    assert "secret" not in json.dumps(kept) and "token" not in json.dumps(kept["config"])


def test_tokens_in_traces_are_redacted() -> None:
    text = (
        "+ BEARER_TOKEN=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n"
        "curl -H 'Authorization: Bearer abc.def' http://x/?token=zzz\n"
        "./config.sh --token AAAA --url u\n"
    )
    shown = redact_secrets(text)
    for secret in ("eyJhbGciOiJIUzI1NiJ9", "abc.def", "zzz", "AAAA"):
        assert secret not in shown
    assert "Bearer ***" in shown and "--token ***" in shown


def _config(tmp_path: Path, keep: int, days: int) -> Config:
    return parse_config(
        f'unix_socket_path = "/s"\n[diagnostics]\npostmortem_dir = "{tmp_path}/pm"\n'
        f"postmortem_keep = {keep}\npostmortem_max_age_days = {days}\n".encode()
    )


def test_file_is_private_gzip_json_and_retention_applies(tmp_path: Path) -> None:
    config = _config(tmp_path, keep=3, days=10)
    directory = tmp_path / "pm"
    directory.mkdir(mode=0o700)
    old = directory / "ancient.20200101T000000Z.json.gz"
    old.write_bytes(b"")
    os.utime(old, (time.time() - 11 * 86400,) * 2)
    other = directory / "notes.txt"  # not ours: never removed
    other.write_text("keep me")
    for index in range(5):
        path = Path(save(config, f"runner-{index}", {"name": f"runner-{index}"}))
        os.utime(path, (time.time() - 100 + index,) * 2)
    names = sorted(p.name for p in directory.iterdir())
    assert "notes.txt" in names and old.name not in names
    kept = [n for n in names if n.endswith(".json.gz")]
    assert [n.split(".")[0] for n in kept] == ["runner-2", "runner-3", "runner-4"]
    newest = directory / kept[-1]
    assert oct(newest.stat().st_mode & 0o777) == "0o600"
    assert json.loads(gzip.decompress(newest.read_bytes())) == {"name": "runner-4"}


def test_symlinked_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "pm").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        save(_config(tmp_path, 5, 5), "runner", {"name": "runner"})
    assert list((tmp_path / "elsewhere").iterdir()) == []


class SilentLxd:
    """A server that takes every request and never answers: each read waits out its timeout.

    Faked: the shared test daemon cannot be made to hang for one test without hanging it for
    every other (the cluster fault tests SIGSTOP a member of their own cluster for that).
    """

    project = "default"

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def _never_answer(self, timeout: float) -> NoReturn:
        self.timeouts.append(timeout)
        time.sleep(timeout)
        raise LxdTimeoutError(f"no answer within {timeout:g} s")

    def read_bounded(self, path: str, limit: int, timeout: float) -> tuple[int, bytes]:
        self._never_answer(timeout)

    def read_file_tail(
        self, name: str, file: str, max_bytes: int, timeout: float, *, lstat_first: bool = True
    ) -> tuple[str | None, bytes, int]:
        self._never_answer(timeout)


def test_a_server_that_never_answers_costs_the_delete_one_budget_in_all(tmp_path: Path) -> None:
    """The console, the cloud-init output and the state share one deadline: a failed runner's
    delete spends at most POSTMORTEM_SECONDS more (each read had its own second before, 3 s in
    all), and the post-mortem says what was not read."""
    config = _config(tmp_path, keep=5, days=5)
    lxd = SilentLxd()
    warnings: list[str] = []
    meta = {"status": "Running", "config": {"user.runner-pool-id": "pool-1"}}
    inspect_before_delete(cast("Lxd", lxd), "runner-1", meta, config, warnings.append)
    assert warnings == []
    assert 1 <= len(lxd.timeouts) <= 3
    assert sum(lxd.timeouts) <= POSTMORTEM_SECONDS + 0.05, lxd.timeouts
    (saved,) = (tmp_path / "pm").iterdir()
    document = json.loads(gzip.decompress(saved.read_bytes()))
    assert OUT_OF_TIME in document["reason"]
    assert document["state"] == {"not_read": OUT_OF_TIME}
