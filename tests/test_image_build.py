"""`garm-provider-lxd image build` without a server: its options, its script and its user data.

The builds themselves, on the real test LXD and Incus, are in test_image_build_lxd.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from image_build_runs import ANY_SHA256, UNUSED_RUNNER, image_build, one_error_line

from garm_provider_lxd.admin.image_build import (
    BuildOptions,
    build_script,
    builder_user_data,
    display_url,
    packages,
    runner_version,
)


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
