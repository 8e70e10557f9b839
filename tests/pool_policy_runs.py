"""Provider runs with a pool's extra specs against the test LXD, for the pool policy tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pylxd
from conftest import RunProvider, create_runner


def create_with_specs(
    run_provider: RunProvider, config: Path, controller_id: str, specs: dict[str, Any]
) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """CreateInstance of a runner with these extra specs: the process and the name it asked for."""
    proc, name, _ = create_runner(run_provider, config, controller_id, extra_specs=specs)
    return proc, name


def instance_exists(client: pylxd.Client, name: str) -> bool:
    """Whether the instance is in the client's project."""
    return bool(client.instances.exists(name))


def assert_refused(proc: subprocess.CompletedProcess[bytes], path: str, entry: str) -> None:
    """The pool policy's one-line refusal at path, naming the entry that would allow it."""
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert err.count("\n") == 1, err
    assert f"extra specs: {path}:" in err
    assert "pool policy" in err
    assert entry in err
