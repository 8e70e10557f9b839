"""Running `garm-provider-lxd image build` as an operator does, and reading what it printed."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pylxd
from adversarial_corpus import Invocation
from conftest import LxdEnv

from garm_provider_lxd.admin.image_build import BUILDER_PREFIX

BUILD_TIMEOUT = 900
# A runner URL for builds that fail before any download.
UNUSED_URL = "http://10.161.0.1/r.tar.gz"
# A checksum for builds that never download, or fail before the check.
ANY_SHA256 = "0" * 64
UNUSED_RUNNER = ("--runner-url", UNUSED_URL, "--runner-sha256", ANY_SHA256)


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


class RunningBuild:
    """An `image build` running in the background, its stderr read a line at a time."""

    def __init__(
        self, provider_bin: str, config: Path, *args: str, env: Mapping[str, str] | None = None
    ) -> None:
        """Run `image build --config CONFIG ARGS...` with env (None: this process's)."""
        self.process = subprocess.Popen(
            [provider_bin, "image", "build", "--config", str(config), *args],
            env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.seen: list[str] = []

    @classmethod
    def of_case(cls, provider_bin: str, call: Invocation) -> RunningBuild:
        """An `image build` corpus case run as the corpus says (its argv, an empty environment)."""
        # The loader checks that such a case's argv starts `image build --config {config}`.
        command, config, args = call.argv_tail[:3], call.argv_tail[3], call.argv_tail[4:]
        assert command == ["image", "build", "--config"], call.argv_tail
        return cls(provider_bin, Path(config), *args, env=call.env)

    def wait_for(self, text: str) -> str:
        """Read stderr up to the first line containing text; return the builder's name."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.seen.append(line)
            if text in line:
                break
        return builder_name("".join(self.seen))

    def finish(
        self, signum: signal.Signals | None = signal.SIGTERM, timeout: float = 300
    ) -> tuple[str, str]:
        """Send signum (None: nothing) and wait for the end; return stdout and all of stderr."""
        if signum is not None:
            self.process.send_signal(signum)
        out, rest = self.process.communicate(timeout=timeout)
        return out, "".join(self.seen) + rest


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


def delete_image(client: pylxd.Client, fingerprint: str) -> None:
    """Remove an image if it is still there."""
    if client.images.exists(fingerprint):
        client.images.get(fingerprint).delete(wait=True)


@contextmanager
def parked_alias(client: pylxd.Client, image: str) -> Iterator[tuple[str, str]]:
    """A fresh alias on `image`'s fingerprint, for builds that must not move it; removed after.

    A regression that publishes under it has its image deleted too.
    """
    fingerprint = client.images.get_by_alias(image).fingerprint
    alias = f"parked-{secrets.token_hex(3)}"
    client.api.images.aliases.post(json={"name": alias, "target": fingerprint})
    try:
        yield alias, fingerprint
    finally:
        target = client.api.images.aliases[alias].get().json()["metadata"]["target"]
        client.api.images.aliases[alias].delete()
        if target != fingerprint:
            delete_image(client, target)


def assert_nothing_left(
    done: subprocess.CompletedProcess[str], client: pylxd.Client, alias: str, fingerprint: str
) -> str:
    """Exit 1 with one line, no builder left, the alias where it was; return the line."""
    assert done.returncode == 1, done.stderr
    line = one_error_line(done)
    name = builder_name(done.stderr)
    assert not name or not client.instances.exists(name), name
    assert client.api.images.aliases[alias].get().json()["metadata"]["target"] == fingerprint
    return line


def remote_config(
    tmp_path: Path, lxd_env: LxdEnv, remotes: dict[str, str], extra: str = ""
) -> Path:
    """A config on the test daemon with the given image_remotes (name -> addr)."""
    config = tmp_path / "remotes.toml"
    text = f"unix_socket_path = {json.dumps(lxd_env.socket)}\n{extra}"
    for name, addr in remotes.items():
        text += f"[image_remotes.{name}]\naddr = {json.dumps(addr)}\n"
    config.write_text(text)
    return config
