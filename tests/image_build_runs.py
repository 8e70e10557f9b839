"""Running `garm-provider-lxd image build` as an operator does, and reading what it printed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from garm_provider_lxd.admin.image_build import BUILDER_PREFIX

BUILD_TIMEOUT = 900


def image_build(
    provider_bin: str, config: Path, *args: str, timeout: float = BUILD_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run `garm-provider-lxd image build --config CONFIG ARGS...`."""
    return subprocess.run(
        [provider_bin, "image", "build", "--config", str(config), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def builder_name(stderr: str) -> str:
    """The builder instance the command reported creating ('' when it created none)."""
    for word in stderr.split():
        if word.startswith(BUILDER_PREFIX):
            return word
    return ""


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The failure's single stderr line, without the program name (progress lines aside)."""
    lines = [line for line in done.stderr.splitlines() if not line.startswith("[")]
    assert len(lines) == 1, done.stderr
    assert done.stdout == ""
    prefix, _, message = lines[0].partition(": ")
    assert prefix == "garm-provider-lxd", lines[0]
    return message
