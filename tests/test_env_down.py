"""tests/env/down.sh against a scratch environment of its own (real LXD daemon, real namespaces).

The scratch environment uses the scripts' overrides (state and cache under a directory of this
test, namespaces with a unique prefix), so the shared test daemons are never touched. Incus and
the cluster are represented by their namespaces, one with a process left in it: starting them
too would cost minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT

ENV_DIR = REPO_ROOT / "tests" / "env"


@pytest.fixture
def scratch() -> Iterator[dict[str, str]]:
    """Overrides that put a whole test environment aside; removed afterwards whatever happens."""
    tag = f"gdt{uuid.uuid4().hex[:6]}"
    # Not under /tmp/pytest-of-root (0700): unprivileged containers must traverse the path.
    base = Path(f"/var/lib/garm-provider-lxd-{tag}")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "GARM_TEST_LXD_DIR": str(base / "state" / "lxd"),
        "GARM_TEST_CACHE_DIR": str(base / "cache"),
        "GARM_TEST_NETNS": f"{tag}-lxd",
        "GARM_TEST_INCUS_NETNS": f"{tag}-incus",
        "GARM_TEST_CLUSTER_NETNS_PREFIX": f"{tag}-cl",
    }
    yield env
    _down(env, "--purge")
    shutil.rmtree(base, ignore_errors=True)


def _down(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENV_DIR / "down.sh"), *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _namespaces(prefix: str) -> list[str]:
    return sorted(name for name in os.listdir("/run/netns") if name.startswith(prefix))


def _alive(pid: int) -> bool:
    try:
        os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return True


def _in_cgroup(word: str) -> list[int]:
    """Pids whose cgroup path contains word (a container's processes carry its name)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if word in Path(f"/proc/{entry}/cgroup").read_text():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_down_stops_every_daemon_and_namespace_and_purge_deletes_the_state(
    scratch: dict[str, str],
) -> None:
    tag = scratch["GARM_TEST_NETNS"].removesuffix("-lxd")
    state_dir = Path(scratch["GARM_TEST_LXD_DIR"]).parent
    up = subprocess.run(
        [str(ENV_DIR / "lxd-up.sh")],
        env=scratch, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert up.returncode == 0, up.stderr
    lxd_pid = int((state_dir / "lxd.pid").read_text())
    assert _alive(lxd_pid)
    runner = f"{tag}-runner"
    lxc_env = {**scratch, "LXD_DIR": scratch["GARM_TEST_LXD_DIR"]}
    launched = subprocess.run(["lxc", "launch", "busybox", runner], env=lxc_env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    assert _in_cgroup(runner), "the container's processes are not where they were expected"
    for ns in (scratch["GARM_TEST_INCUS_NETNS"], f"{tag}-clnet", f"{tag}-cl1"):
        subprocess.run(["ip", "netns", "add", ns], check=True)
    leftover = subprocess.Popen(
        ["ip", "netns", "exec", f"{tag}-clnet", "sleep", "600"], start_new_session=True
    )

    down = _down(scratch)

    assert down.returncode == 0, down.stderr
    assert not _alive(lxd_pid)
    assert leftover.wait(timeout=10) != 0  # killed
    assert _in_cgroup(runner) == []
    assert _namespaces(tag) == []
    assert f"{state_dir} (" in down.stderr  # what it leaves, with its size
    assert f"{scratch['GARM_TEST_CACHE_DIR']} (" in down.stderr
    assert "--purge" in down.stderr
    assert state_dir.is_dir()

    again = _down(scratch)
    assert again.returncode == 0, again.stderr
    assert "LXD is not running" in again.stderr

    purged = _down(scratch, "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not state_dir.exists()
    assert not Path(scratch["GARM_TEST_CACHE_DIR"]).exists()


def test_down_refuses_an_unknown_argument() -> None:
    done = subprocess.run([str(ENV_DIR / "down.sh"), "--all"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == "usage: tests/env/down.sh [--purge]\n"
