"""No process outlives the provider holding its stdout or stderr (GARM reads both to EOF)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability.faultproxy import Fault, FaultProxy
from reliability.harness import garm_env, open_fds_to

pytestmark = pytest.mark.reliability
pytest_plugins = ["reliability.fixtures"]

# Bounds: the provider finishing, then its pipes reaching EOF once it has exited.
EXIT_DEADLINE = 120.0
EOF_DEADLINE = 10.0


def _children(pid: int) -> set[int]:
    """Direct children of pid, from /proc/<pid>/task/*/children."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.update(int(p) for p in handle.read().split())
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _holders(targets: set[str]) -> list[str]:
    """Every process other than this one that has one of the target pipes open."""
    held = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            held += [f"pid {entry}: {fd}" for fd in open_fds_to(int(entry), targets)]
    return held


def _run_watched(
    argv: list[str],
    env: dict[str, str],
    stdin: bytes,
    *,
    terminate: threading.Event | None = None,
    eof_deadline: float = EOF_DEADLINE,
) -> tuple[int, set[int], bytes, bytes]:
    """Run argv with pipes; return exit code, children seen, stdout and stderr."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    pipes = {f"pipe:[{os.fstat(f.fileno()).st_ino}]" for f in (proc.stdout, proc.stderr)}
    chunks: dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        chunks[name] = stream.read()  # returns only at EOF: every writer has closed it

    readers = [
        threading.Thread(target=drain, args=("out", proc.stdout), daemon=True),
        threading.Thread(target=drain, args=("err", proc.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    proc.stdin.write(stdin)
    proc.stdin.close()
    seen: set[int] = set()
    while proc.poll() is None:
        seen |= _children(proc.pid)
        if terminate is not None and terminate.is_set():
            proc.send_signal(signal.SIGTERM)
            terminate = None
        try:
            proc.wait(timeout=0.01)
        except subprocess.TimeoutExpired:
            continue
    code = proc.wait(timeout=EXIT_DEADLINE)
    for reader in readers:
        reader.join(eof_deadline)
    stuck = [r for r in readers if r.is_alive()]
    assert not stuck, f"stdout/stderr still open after exit, held by {_holders(pipes)}"
    assert _holders(pipes) == []
    leftovers = [pid for pid in seen if _alive(pid)]
    assert leftovers == [], f"children of the provider still running: {leftovers}"
    return code, seen, chunks["out"], chunks["err"]


@pytest.mark.parametrize("case", ["success", "bad-input", "lxd-error", "sigterm", "list"])
def test_nothing_outlives_the_provider(
    provider_bin: str,
    proxy_config: Path,
    fault_proxy: FaultProxy,
    bootstrap: Callable[..., dict[str, Any]],
    controller: str,
    case: str,
) -> None:
    boot = bootstrap(f"garm-proc-{uuid.uuid4().hex[:8]}")
    stdin = json.dumps(boot).encode()
    command = "ListInstances" if case == "list" else "CreateInstance"
    env = garm_env(command, proxy_config, controller, pool_id=boot["pool_id"])
    terminate: threading.Event | None = None
    expected = 0
    if case == "bad-input":
        stdin, expected = b'{"name": ', 1
    elif case == "lxd-error":
        fault_proxy.add(Fault.ERROR_500, "POST", r"^/1\.0/instances(\?|$)")
        expected = 1
    elif case == "sigterm":
        # SIGTERM while the create operation runs: the provider cleans up and exits 1.
        rule = fault_proxy.add(Fault.HOLD, "GET", r"/wait", times=1)
        terminate = rule.hit
        expected = 1
    code, _, out, err = _run_watched([provider_bin], env, stdin, terminate=terminate)
    assert code == expected, err
    if expected == 0:
        json.loads(out)
    else:
        assert out == b"" and err.count(b"\n") == 1, (out, err)


def test_the_watch_catches_a_child_left_holding_stderr(tmp_path: Path) -> None:
    # The check itself must be able to fail: a shell that leaves a sleeper on its stderr.
    pid_file = tmp_path / "sleeper.pid"
    script = f"sleep 30 >/dev/null & echo $! > {pid_file}; echo started"
    try:
        with pytest.raises(AssertionError, match="still open after exit"):
            _run_watched(["/bin/sh", "-c", script], {}, b"", eof_deadline=1.0)
    finally:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
