"""`garm-provider-lxd image build` without a server: its options, its script and its user data.

The builds themselves, on the real test LXD and Incus, are in test_image_build_lxd.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any, cast

import pylxd
import pytest
from image_build_runs import ANY_SHA256, UNUSED_RUNNER, image_build, one_error_line

from garm_provider_lxd.admin import image_build as image_build_module
from garm_provider_lxd.admin.image_build import (
    BuilderLeft,
    BuildOptions,
    _delete_builder,
    build_script,
    builder_user_data,
    display_url,
    packages,
    runner_version,
)
from garm_provider_lxd.admin.pylxd_client import WAIT_SLACK_SECONDS


@pytest.mark.parametrize(
    ("url", "version"),
    [
        ("https://github.com/actions/runner/releases/download/v2.321.0/"
         "actions-runner-linux-x64-2.321.0.tar.gz", "2.321.0"),
        ("http://10.0.0.1/tools/actions-runner-linux-arm64-2.329.10.tar.gz?sig=x", "2.329.10"),
        ("https://mirror.example/runner.tar.gz", ""),
    ],
)  # fmt: skip
def test_runner_version_from_file_name(url: str, version: str) -> None:
    """The version comes from the release file name, query string aside."""
    assert runner_version(url) == version


def test_display_url_drops_credentials_and_query() -> None:
    """Messages and image properties never carry a URL's user, password or signature."""
    shown = display_url("https://user:secret@host.example/a/runner.tar.gz?token=abc#frag")
    assert shown == "https://host.example/a/runner.tar.gz"


def test_build_script_quotes_the_url(tmp_path: Path) -> None:
    """A URL with shell metacharacters stays one word: the script parses and keeps it intact."""
    url = "https://host.example/x.tar.gz?a=1&b=$(touch /tmp/pwned)'\""
    script = tmp_path / "build.sh"
    script.write_text(build_script(BuildOptions(base="b", alias="a", runner_url=url)))
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    shown = subprocess.run(
        ["bash", "-c", f'eval "$(sed -n \'/^RUNNER_URL=/p\' {script})"; printf %s "$RUNNER_URL"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == url


def test_builder_user_data_creates_the_runner_user() -> None:
    """The builder gets the runner user exactly as runners' user data creates it."""
    options = BuildOptions(base="b", alias="a", runner_url="http://h/r.tar.gz", packages=("git",))
    text = builder_user_data(options).decode()
    assert text.startswith("#cloud-config\n")
    for line in ("name: runner", "home: /home/runner", "- docker", "- git", "- curl"):
        assert line in text, line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runner-url", "ftp://h/r.tar.gz"], "--runner-url: must be an http(s) URL"),
        (["--runner-sha256", "abc"], "--runner-sha256: must be 64 lower-case hex digits"),
        (["--package", "git;rm -rf /"], "--package: 'git;rm -rf /' is not a package name"),
        (["--alias", "a/b"], "--alias: 'a/b' is not a valid image alias"),
        (["--timeout", "0"], "--timeout: must be between 1 and 86400 seconds"),
        (["--cleanup-timeout", "0"], "--cleanup-timeout: must be between 1 and 3600 seconds"),
    ],
)
def test_bad_options_fail_before_connecting(
    provider_bin: str, tmp_path: Path, args: list[str], message: str
) -> None:
    """Bad options: one line, exit 1, and the (unreachable) server is never contacted."""
    config = tmp_path / "c.toml"
    config.write_text('unix_socket_path = "/nonexistent/unix.socket"\n')
    defaults = {"--from": "img", "--alias": "x", "--runner-url": "http://h/r.tar.gz",
                "--runner-sha256": ANY_SHA256}  # fmt: skip
    merged = dict(defaults)
    merged.update(zip(args[::2], args[1::2], strict=True))
    flat = [item for pair in merged.items() for item in pair]
    done = image_build(provider_bin, config, *flat)
    assert done.returncode == 1
    assert one_error_line(done) == message


def test_unreachable_server_is_one_line(provider_bin: str, tmp_path: Path) -> None:
    """A config whose socket does not exist: one line naming it, exit 1."""
    config = tmp_path / "c.toml"
    config.write_text('unix_socket_path = "/nonexistent/unix.socket"\n')
    done = image_build(provider_bin, config, "--from", "img", "--alias", "x",
                       *UNUSED_RUNNER)  # fmt: skip
    assert done.returncode == 1
    assert "cannot connect to /nonexistent/unix.socket" in one_error_line(done)


def test_builder_user_data_installs_each_package_once() -> None:
    """curl and tar come first, --package names follow, each once; the script names them too."""
    options = BuildOptions(base="b", alias="a", runner_url="http://h/r.tar.gz",
                           packages=("git", "curl", "jq"))  # fmt: skip
    assert packages(options) == ["curl", "tar", "git", "jq"]
    assert "PACKAGES='curl tar git jq'\n" in build_script(options)


STUCK_BUILDER = "garm-image-build-0badc0de"
# An old clean-up that never looks at its deadline polls without end: the fake stops it here.
MAX_POLLS = 10_000


class _Clock:
    """Time for the clean-up under test: it moves only when the clean-up sleeps or waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.polls = 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.polls += 1
        assert self.polls < MAX_POLLS, "the clean-up is still polling: it has no deadline"
        self.now += seconds


class _Response:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code = status
        self.body = body

    def json(self) -> dict[str, Any]:
        return self.body


class _StuckNode:
    """LXD's API as far as the clean-up reads it, with one create operation on the builder that
    never ends and no instance of its name yet."""

    def __init__(self, clock: _Clock, path: str = "") -> None:
        self.clock = clock
        self.path = path

    def __getitem__(self, segment: str) -> _StuckNode:
        return _StuckNode(self.clock, f"{self.path}/{segment}")

    __getattr__ = __getitem__

    def get(self, params: dict[str, str] | None = None, **_: Any) -> _Response:
        if self.path == "/operations":
            running = [
                {"id": "op1", "resources": {"instances": [f"/1.0/instances/{STUCK_BUILDER}"]}}
            ]
            return _Response(200, {"type": "sync", "metadata": {"running": running}})
        if self.path == "/operations/op1/wait":  # LXD answers when its timeout is up
            self.clock.now += float((params or {}).get("timeout", "0"))
            return _Response(200, {"type": "sync", "metadata": {"status": "Running"}})
        raise pylxd.exceptions.NotFound(_Response(404, {"type": "error", "error": "Not found"}))


class _StuckClient:
    def __init__(self, clock: _Clock) -> None:
        self.api = _StuckNode(clock)
        self.instances = self  # the clean-up may ask pylxd's manager for the instance
        self.host_info = {"environment": {"server": "lxd"}}

    def get(self, name: str) -> Any:
        return self.api["instances"][name].get()


def test_a_stuck_operation_on_the_builder_ends_at_the_deadline_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An operation on the builder that never finishes (the create of a builder under load):
    the clean-up stops at its deadline and names the builder and the command that deletes it.

    A fake, because the real server cannot be made to keep an operation running at will.
    """
    clock = _Clock()
    monkeypatch.setattr(image_build_module, "time", clock)
    with pytest.raises(BuilderLeft) as left:
        _delete_builder(_StuckClient(clock), STUCK_BUILDER)
    assert str(left.value) == (
        f"image build: the builder {STUCK_BUILDER} is still there after 120 s of clean-up "
        "(an LXD operation on it is still running); delete it with: "
        f"lxc delete --force --project default {STUCK_BUILDER}"
    )
    assert clock.now < 120 + 2 * WAIT_SLACK_SECONDS


def test_sigterm_during_a_poll_of_the_builders_files_ends_the_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM while a poll reads one of the builder's files ends the build (and so deletes the
    builder); a failed read is retried, an interruption is not. It was once taken for a failed
    read: the build went on polling until its --timeout, the builder running all along.

    A fake file reader, because when the signal lands within a real read is a matter of timing.
    """
    from garm_provider_lxd.errors import ProviderError
    from garm_provider_lxd.invocation import signals_as_exceptions

    class ReaderInterrupted:
        def read_file_tail(self, *_: object) -> Any:
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("the signal handler did not run")

    interrupted = r"^interrupted by signal 15$"
    for read in (image_build_module._read, image_build_module._exists):
        with signals_as_exceptions(), pytest.raises(ProviderError, match=interrupted):
            read(cast(Any, ReaderInterrupted()), STUCK_BUILDER, "/x")
