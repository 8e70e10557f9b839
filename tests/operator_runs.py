"""Running the operator commands status, logs and prune as an operator does, and their output."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path

from conftest import run_operator

POOL_KEY = "user.runner-pool-id"

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
