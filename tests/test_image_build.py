"""`garm-provider-lxd image build`: a baked runner image, and runners that boot from it.

The fast tests check the command's input handling and its refusal of a missing base image on
the real test LXD. The `e2e` ones build a real image from the cloud-init test image with the
stub runner the fake GARM serves (tests/e2e/), create runners from it with the default install
script and with GARM's own template, and try the ways a build fails. See docs/runner-images.md.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pylxd
import pytest
from conftest import LxdEnv, RunProvider
from e2e.driver import Runner, Scenario, b64
from e2e.harness import FakeGarm, runner_service
from e2e.runner_tarball import FILENAME
from test_e2e import SEED_TEMPLATE, bridge_address, e2e_ca, e2e_image, fake_garm
from test_incus import IncusEnv, incus_client, incus_env

from garm_provider_lxd.image_build import (
    BUILDER_PREFIX,
    POLL_SECONDS,
    STATE_DIR,
    BuildOptions,
    build_script,
    builder_user_data,
    display_url,
    packages,
    runner_version,
)

# Fixtures shared with the end-to-end scenarios (same fake GARM, same image, same bridge).
__all__ = ["bridge_address", "e2e_ca", "e2e_image", "fake_garm", "incus_client", "incus_env"]

BUILD_TIMEOUT = 900
RUNNER_DIR = "/home/runner/actions-runner"
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


def runner_args(garm: FakeGarm) -> tuple[str, ...]:
    """--runner-url and --runner-sha256 of the stub runner the fake GARM serves."""
    return ("--runner-url", garm.download_url, "--runner-sha256", garm.runner_sha256)


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


# -- no server needed --------------------------------------------------------------------------


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


HTTPS_URL = "https://mirror.example/actions-runner-linux-x64-2.321.0.tar.gz"


@pytest.mark.parametrize(
    ("runner", "message"),
    [
        (["--runner-url", HTTPS_URL],
         "--runner-sha256 is required (the SHA-256 listed with the runner release); "
         "--insecure-skip-runner-checksum publishes an unverified download instead"),
        (["--runner-url", UNUSED_URL, "--insecure-skip-runner-checksum"],
         "--runner-url: an http:// URL needs --runner-sha256"),
        (["--runner-url", UNUSED_URL], "--runner-url: an http:// URL needs --runner-sha256"),
        (["--runner-url", HTTPS_URL, "--runner-sha256", ANY_SHA256,
          "--insecure-skip-runner-checksum"],
         "--runner-sha256 and --insecure-skip-runner-checksum exclude each other"),
    ],
)  # fmt: skip
def test_unverified_runner_is_refused(
    provider_bin: str,
    provider_config: Path,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
    runner: list[str],
    message: str,
) -> None:
    """No checksum: refused (https only with the loudly named flag, http never), one line, exit
    1, against the real server and nothing created."""
    alias = f"unverified-{secrets.token_hex(3)}"
    before = builders(lxd_client)
    done = image_build(provider_bin, provider_config, "--from", lxd_env.image, "--alias", alias,
                       *runner)  # fmt: skip
    assert done.returncode == 1
    assert one_error_line(done) == message
    assert builder_name(done.stderr) == ""
    assert builders(lxd_client) == before
    assert not lxd_client.images.exists(alias, alias=True)


def test_unreachable_server_is_one_line(provider_bin: str, tmp_path: Path) -> None:
    """A config whose socket does not exist: one line naming it, exit 1."""
    config = tmp_path / "c.toml"
    config.write_text('unix_socket_path = "/nonexistent/unix.socket"\n')
    done = image_build(provider_bin, config, "--from", "img", "--alias", "x",
                       *UNUSED_RUNNER)  # fmt: skip
    assert done.returncode == 1
    assert "cannot connect to /nonexistent/unix.socket" in one_error_line(done)


# -- the real test LXD ---------------------------------------------------------------------------


def builders(client: pylxd.Client) -> list[str]:
    """Builder instances on the server."""
    return [i.name for i in client.instances.all() if i.name.startswith(BUILDER_PREFIX)]


def test_missing_base_image_creates_nothing(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client
) -> None:
    """A base image that does not exist fails before any builder is created."""
    missing = f"no-such-image-{secrets.token_hex(3)}"
    before = builders(lxd_client)
    done = image_build(provider_bin, provider_config, "--from", missing, "--alias", missing,
                       *UNUSED_RUNNER)  # fmt: skip
    assert done.returncode == 1
    assert one_error_line(done) == f"base image '{missing}' not found in project 'default'"
    assert builder_name(done.stderr) == ""
    assert builders(lxd_client) == before
    assert not lxd_client.images.exists(missing, alias=True)


@pytest.mark.parametrize("suffix", ["?x=1", "#x", "/../x"])
def test_base_image_names_are_not_read_as_paths(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, lxd_env: LxdEnv, suffix: str
) -> None:
    """An existing alias followed by URL syntax names no image: nothing is looked up but it."""
    base = lxd_env.image + suffix
    before = builders(lxd_client)
    done = image_build(provider_bin, provider_config, "--from", base, "--alias", "x",
                       *UNUSED_RUNNER)  # fmt: skip
    assert done.returncode == 1
    assert one_error_line(done) == f"base image {base!r} not found in project 'default'"
    assert builders(lxd_client) == before


def test_missing_profile_leaves_no_builder(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, lxd_env: LxdEnv
) -> None:
    """LXD refusing the builder (an unknown profile): one line with LXD's reason, nothing left."""
    before = builders(lxd_client)
    done = image_build(provider_bin, provider_config, "--from", lxd_env.image, "--alias", "x",
                       *UNUSED_RUNNER,
                       "--profile", "no-such-profile")  # fmt: skip
    assert done.returncode == 1
    line = one_error_line(done)
    assert line.startswith("image build: ") and '"no-such-profile"' in line, line
    assert builders(lxd_client) == before


@pytest.mark.parametrize(
    ("signum", "after", "delay"),
    [
        (signal.SIGTERM, "creating builder", 0.3),  # the create request under way
        (signal.SIGINT, "creating builder", 0.0),  # about to send it
        (signal.SIGTERM, "waiting for cloud-init", 0.0),
        (signal.SIGINT, "waiting for cloud-init", 0.0),
    ],
)
def test_interrupted_build_leaves_no_builder(
    provider_bin: str,
    provider_config: Path,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
    signum: signal.Signals,
    after: str,
    delay: float,
) -> None:
    """SIGTERM or Ctrl-C at any point: exit 1, one line saying so, and no builder left.

    The busybox test image has no cloud-init, so the builder waits until it is told to stop.
    """
    before = set(builders(lxd_client))
    process = subprocess.Popen(
        [provider_bin, "image", "build", "--config", str(provider_config), "--from",
         lxd_env.image, "--alias", "x", *UNUSED_RUNNER],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if after in line:
            break
    time.sleep(delay)
    process.send_signal(signum)
    out, rest = process.communicate(timeout=300)
    stderr = "".join(seen) + rest
    assert process.returncode == 1, stderr
    assert out == ""
    said = "interrupted by signal 15" if signum == signal.SIGTERM else "interrupted"
    assert stderr.splitlines()[-1] == f"garm-provider-lxd: {said}"
    name = builder_name(stderr)
    assert name and not lxd_client.instances.exists(name)
    assert set(builders(lxd_client)) <= before


def test_fifo_in_the_builder_does_not_keep_it(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, lxd_env: LxdEnv
) -> None:
    """Code in the builder makes its step file a FIFO: the build's polls do not wait on it (they
    read over SFTP and refuse what is not a regular file), so SIGTERM still deletes the builder.

    Through LXD's plain file API the poll waits for a writer, and LXD cannot stop the builder
    meanwhile: the clean-up gives up and the builder stays.
    """
    process = subprocess.Popen(
        [provider_bin, "image", "build", "--config", str(provider_config), "--from",
         lxd_env.image, "--alias", "x", *UNUSED_RUNNER],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "waiting for cloud-init" in line:
            break
    name = builder_name("".join(seen))
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LXD_DIR": lxd_env.lxd_dir}
    subprocess.run(["lxc", "exec", name, "--", "sh", "-c", f"mkdir -p {STATE_DIR}; "
                    f"mkfifo {STATE_DIR}/step"], env=env, check=True, timeout=60)  # fmt: skip
    time.sleep(3 * POLL_SECONDS)  # a few polls: each reads the step file
    process.terminate()
    _, rest = process.communicate(timeout=300)
    stderr = "".join(seen) + rest
    assert process.returncode == 1, stderr
    assert stderr.splitlines()[-1] == "garm-provider-lxd: interrupted by signal 15"
    assert not lxd_client.instances.exists(name)


def test_builder_stopped_early_is_not_published(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, lxd_env: LxdEnv
) -> None:
    """Someone stops the builder before it sealed: exit 1, nothing published, builder gone."""
    alias = f"never-{secrets.token_hex(3)}"
    process = subprocess.Popen(
        [provider_bin, "image", "build", "--config", str(provider_config), "--from",
         lxd_env.image, "--alias", alias, *UNUSED_RUNNER],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "waiting for cloud-init" in line:
            break
    name = builder_name("".join(seen))
    lxd_client.instances.get(name).stop(force=True, wait=True)
    try:
        out, rest = process.communicate(timeout=120)
    finally:  # a regression publishes the alias: do not leave it behind
        if lxd_client.images.exists(alias, alias=True):
            lxd_client.images.get_by_alias(alias).delete(wait=True)
    stderr = "".join(seen) + rest
    assert process.returncode == 1, stderr
    assert out == ""
    last = stderr.splitlines()[-1]
    assert last.startswith("garm-provider-lxd: image build: the builder stopped before the build")
    assert not lxd_client.instances.exists(name)
    assert not lxd_client.images.exists(alias, alias=True)


def test_builder_user_data_installs_each_package_once() -> None:
    """curl and tar come first, --package names follow, each once; the script names them too."""
    options = BuildOptions(base="b", alias="a", runner_url="http://h/r.tar.gz",
                           packages=("git", "curl", "jq"))  # fmt: skip
    assert packages(options) == ["curl", "tar", "git", "jq"]
    assert "PACKAGES='curl tar git jq'\n" in build_script(options)


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


def test_unknown_remote_creates_nothing(
    provider_bin: str, tmp_path: Path, lxd_client: pylxd.Client, lxd_env: LxdEnv
) -> None:
    """--from with a remote the config does not name: one line listing the configured ones."""
    config = remote_config(tmp_path, lxd_env, {"mirror": "https://images.example"})
    before = builders(lxd_client)
    with parked_alias(lxd_client, lxd_env.image) as (alias, fingerprint):
        done = image_build(provider_bin, config, "--from", "ubuntu:24.04", "--alias", alias,
                           *UNUSED_RUNNER)  # fmt: skip
        line = assert_nothing_left(done, lxd_client, alias, fingerprint)
    assert line == (
        "image 'ubuntu:24.04': remote 'ubuntu' is not configured in image_remotes "
        "(configured: mirror)"
    )
    assert builder_name(done.stderr) == ""
    assert builders(lxd_client) == before


def test_refused_remote_leaves_no_builder(
    provider_bin: str,
    tmp_path: Path,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
    bridge_address: str,
) -> None:
    """--from remote:alias on a closed port: the server pulls from the configured address as
    simplestreams (its error names the index URL), refuses, and no builder is left.
    """
    addr = f"http://{bridge_address}:9"
    config = remote_config(tmp_path, lxd_env, {"closed": addr})
    with parked_alias(lxd_client, lxd_env.image) as (alias, fingerprint):
        done = image_build(provider_bin, config, "--from", "closed:debian/12", "--alias", alias,
                           *UNUSED_RUNNER, "--timeout", "60")  # fmt: skip
        line = assert_nothing_left(done, lxd_client, alias, fingerprint)
    assert line.startswith("image build: "), line
    assert f"{addr}/streams/v1/index.json" in line and "connection refused" in line, line
    assert "creating builder" in done.stderr  # LXD, not the command, refused the source


def test_vm_builder_of_a_container_image_is_refused(
    provider_bin: str, tmp_path: Path, lxd_client: pylxd.Client, lxd_env: LxdEnv
) -> None:
    """instance_type = "virtual-machine" makes a VM builder; LXD refuses it from a container
    image, with one line, and nothing is left.
    """
    config = remote_config(tmp_path, lxd_env, {}, 'instance_type = "virtual-machine"\n')
    with parked_alias(lxd_client, lxd_env.image) as (alias, fingerprint):
        done = image_build(provider_bin, config, "--from", lxd_env.image, "--alias", alias,
                           *UNUSED_RUNNER, "--timeout", "60")  # fmt: skip
        line = assert_nothing_left(done, lxd_client, alias, fingerprint)
    assert line == (
        "image build: Requested image's type \"container\" doesn't match instance type "
        '"virtual-machine"'
    )


@pytest.fixture(scope="module")
def empty_vm_image(
    lxd_client: pylxd.Client, lxd_env: LxdEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A virtual-machine image (an empty qcow2 disk) imported into the test daemon; its alias.

    Enough for LXD to accept it as a VM builder's source; deleted afterwards.
    """
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img (qemu-utils) is needed to make a VM image")
    work = tmp_path_factory.mktemp("vm-image")
    (work / "metadata.yaml").write_text(
        f"architecture: x86_64\ncreation_date: {int(time.time())}\n"
        "properties:\n  os: none\n  description: empty VM image (garm-provider-lxd tests)\n"
    )
    subprocess.run(["tar", "-C", str(work), "-czf", str(work / "meta.tar.gz"), "metadata.yaml"],
                   check=True)  # fmt: skip
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(work / "disk.qcow2"), "64M"],
                   check=True)  # fmt: skip
    alias = f"empty-vm-{secrets.token_hex(3)}"
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LXD_DIR": lxd_env.lxd_dir,
           "LXD_CONF": str(work / "lxc-client")}  # fmt: skip
    subprocess.run(["lxc", "image", "import", str(work / "meta.tar.gz"), str(work / "disk.qcow2"),
                    "--alias", alias], env=env, capture_output=True, check=True)  # fmt: skip
    fingerprint = lxd_client.images.get_by_alias(alias).fingerprint
    yield alias
    delete_image(lxd_client, fingerprint)


def test_vm_builder_is_refused_without_vm_support(
    provider_bin: str,
    tmp_path: Path,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
    empty_vm_image: str,
) -> None:
    """A VM builder from a VM image on a server that cannot run VMs (no vhost_vsock here): LXD
    refuses to create it, one line says why, and nothing is left.
    """
    if "qemu" in str(lxd_client.host_info["environment"].get("driver", "")):
        pytest.skip("this server runs VMs: the refusal under test cannot happen")
    config = remote_config(tmp_path, lxd_env, {}, 'instance_type = "virtual-machine"\n')
    before = builders(lxd_client)
    with parked_alias(lxd_client, empty_vm_image) as (alias, fingerprint):
        done = image_build(provider_bin, config, "--from", empty_vm_image, "--alias", alias,
                           *UNUSED_RUNNER, "--timeout", "60")  # fmt: skip
        line = assert_nothing_left(done, lxd_client, alias, fingerprint)
    assert line.startswith("image build: "), line
    assert 'Instance type "virtual-machine" is not supported on this server' in line, line
    assert builders(lxd_client) == before


# -- end to end ------------------------------------------------------------------------------------


def delete_image(client: pylxd.Client, fingerprint: str) -> None:
    """Remove an image if it is still there."""
    if client.images.exists(fingerprint):
        client.images.get(fingerprint).delete(wait=True)


@pytest.fixture(scope="module")
def baked(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    e2e_image: str,
    fake_garm: FakeGarm,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """An image baked from the e2e image with the fake GARM's runner; deleted afterwards."""
    config = tmp_path_factory.mktemp("image-build") / "config.toml"
    config.write_text(f"unix_socket_path = {json.dumps(lxd_env.socket)}\n")
    alias = f"e2e-baked-{secrets.token_hex(3)}"
    done = image_build(provider_bin, config, "--from", e2e_image, "--alias", alias,
                       "--runner-url", fake_garm.download_url,
                       "--runner-sha256", fake_garm.runner_sha256)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    made = [result["fingerprint"]]
    yield {**result, "config": config, "stderr": done.stderr, "made": made}
    for fingerprint in made:
        delete_image(lxd_client, fingerprint)


@pytest.fixture
def baked_scenario(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    bootstrap: Callable[..., dict[str, Any]],
    baked: dict[str, Any],
    fake_garm: FakeGarm,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
) -> Scenario:
    """The e2e scenario driver, creating runners from the baked image."""
    return Scenario(run_provider, provider_config, controller_id, bootstrap, baked["alias"],
                    fake_garm, lxd_env.lxd_dir, lxd_client, lxd_env.pool, [])  # fmt: skip


def downloads_since(garm: FakeGarm, started: float) -> list[str]:
    """Runner tarball downloads the fake GARM served after `started`."""
    return [e["path"] for e in garm.events() if e["kind"] == "download" and e["t"] >= started]


@pytest.mark.e2e
def test_build_publishes_the_alias(baked: dict[str, Any], lxd_client: pylxd.Client) -> None:
    """One JSON object out, the alias published with its properties, no builder left."""
    assert set(baked) >= {"fingerprint", "alias", "size", "seconds"}
    assert baked["size"] > 0 and baked["seconds"] > 0
    image = lxd_client.images.get_by_alias(baked["alias"])
    assert image.fingerprint == baked["fingerprint"]
    assert image.properties["garm_runner_version"] == "2.321.0"
    assert image.properties["garm_base_image"].startswith("garm-cloudinit (")
    assert image.properties["garm_built_at"].endswith("Z")
    assert image.properties["os"] == "debian"  # the base image's own properties are kept
    name = builder_name(baked["stderr"])
    assert name and not lxd_client.instances.exists(name)
    assert "cloud-init" in baked["stderr"]


def assert_cached_runner(s: Scenario, runner: Runner) -> None:
    """The runner went idle from the baked runner: no download, runner-owned, service up."""
    assert runner.create.returncode == 0, runner.create.stderr.decode()
    statuses = [st["status"] for st in runner.statuses]
    assert statuses[-1] == "idle", runner.statuses
    messages = [st.get("message", "") for st in runner.statuses]
    assert any(m.startswith("using cached runner") for m in messages), messages
    assert not any(m.startswith("downloading tools") for m in messages), messages
    assert downloads_since(s.garm, runner.started) == []
    unit = runner_service(runner.name)
    # One exec for every check: each `lxc exec` costs a second or more on a busy machine.
    found = s.sh(runner, f"stat -c %U {RUNNER_DIR} {RUNNER_DIR}/config.sh {RUNNER_DIR}/.runner; "
                 f"systemctl is-active {unit}; systemctl show -p User,WorkingDirectory {unit}; "
                 "hostname; test -s /etc/machine-id && echo machine-id; "
                 "test -e /var/lib/garm-image-build || echo no-build-state")  # fmt: skip
    lines = found.stdout.split()
    assert lines[:3] == ["runner"] * 3, found
    assert lines[3] == "active", found
    assert "User=runner" in lines and f"WorkingDirectory={RUNNER_DIR}" in lines, found
    # A fresh cloud-init run, not the builder's: this instance's name is the hostname, and
    # systemd made a machine id of its own (the image's is empty).
    assert lines[-3:] == [runner.name, "machine-id", "no-build-state"], found


def delete_runner(s: Scenario, runner: Runner) -> None:
    """DeleteInstance leaves nothing."""
    done = s.delete(runner)
    assert done.returncode == 0, done.stderr.decode()
    assert s.leftovers(runner.name) == []


@pytest.mark.e2e
def test_default_script_uses_the_baked_runner(baked_scenario: Scenario) -> None:
    """The provider's default install script (JIT) finds the baked runner and skips the download."""
    runner = baked_scenario.wait(baked_scenario.create("baked-jit", jit=True))
    assert_cached_runner(baked_scenario, runner)
    assert runner.final.get("agent_id") == runner.registration["agent_id"]
    delete_runner(baked_scenario, runner)


@pytest.mark.e2e
def test_garm_template_uses_the_baked_runner(baked_scenario: Scenario) -> None:
    """GARM's own template finds /opt/cache/actions-runner/<version>: no download."""
    specs = {"runner_install_template": b64(SEED_TEMPLATE.read_bytes())}
    runner = baked_scenario.wait(baked_scenario.create("baked-garm", jit=False, extra_specs=specs))
    assert_cached_runner(baked_scenario, runner)
    messages = [st.get("message", "") for st in runner.statuses]
    assert "using cached runner found in /opt/cache/actions-runner/2.321.0" in messages
    assert runner.final.get("agent_id") == runner.registration["agent_id"]
    delete_runner(baked_scenario, runner)


def assert_failed_cleanly(
    done: subprocess.CompletedProcess[str], client: pylxd.Client, baked: dict[str, Any]
) -> str:
    """Exit 1 with one line, the builder deleted, the alias where it was; return the line."""
    assert done.returncode == 1, done.stderr
    line = one_error_line(done)
    name = builder_name(done.stderr)
    assert name and not client.instances.exists(name)
    assert client.images.get_by_alias(baked["alias"]).fingerprint == baked["fingerprint"]
    return line


@pytest.mark.e2e
def test_bad_checksum_fails_cleanly(
    provider_bin: str, baked: dict[str, Any], fake_garm: FakeGarm, lxd_client: pylxd.Client
) -> None:
    """A tarball whose SHA-256 differs: exit 1, one line naming the mismatch, nothing published."""
    wrong = "0" * 64
    done = image_build(provider_bin, baked["config"], "--from", "garm-cloudinit",
                       "--alias", baked["alias"], "--runner-url", fake_garm.download_url,
                       "--runner-sha256", wrong)  # fmt: skip
    line = assert_failed_cleanly(done, lxd_client, baked)
    assert line.startswith(f"image build failed: checksum mismatch for {fake_garm.download_url}")
    assert fake_garm.runner_sha256 in line


@pytest.mark.e2e
def test_unreachable_url_fails_cleanly(
    provider_bin: str, baked: dict[str, Any], bridge_address: str, lxd_client: pylxd.Client
) -> None:
    """A runner URL on a closed port of the bridge: exit 1, one line naming the download."""
    url = f"http://{bridge_address}:9/tools/{FILENAME}"
    done = image_build(provider_bin, baked["config"], "--from", "garm-cloudinit",
                       "--alias", baked["alias"], "--runner-url", url,
                       "--runner-sha256", ANY_SHA256)  # fmt: skip
    line = assert_failed_cleanly(done, lxd_client, baked)
    assert line.startswith(f"image build failed: download of {url} failed: ")


@pytest.mark.e2e
def test_timeout_fails_cleanly(
    provider_bin: str, baked: dict[str, Any], fake_garm: FakeGarm, lxd_client: pylxd.Client
) -> None:
    """A builder that does not finish in --timeout: exit 1, builder deleted, alias unmoved."""
    done = image_build(provider_bin, baked["config"], "--from", "garm-cloudinit",
                       "--alias", baked["alias"], *runner_args(fake_garm),
                       "--timeout", "3")  # fmt: skip
    line = assert_failed_cleanly(done, lxd_client, baked)
    assert line.startswith("image build: the builder did not finish within 3 s (last seen: ")


@pytest.mark.e2e
def test_second_build_moves_the_alias_and_keeps_the_old_image(
    provider_bin: str, baked: dict[str, Any], fake_garm: FakeGarm, lxd_client: pylxd.Client
) -> None:
    """Rebuilding under the same alias moves it; the previous image stays (unaliased)."""
    old = baked["fingerprint"]
    done = image_build(provider_bin, baked["config"], "--from", "garm-cloudinit",
                       "--alias", baked["alias"], *runner_args(fake_garm),
                       "--package", "curl")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    baked["made"].append(result["fingerprint"])
    assert result["fingerprint"] != old
    assert result["previous"] == old
    assert lxd_client.images.get_by_alias(baked["alias"]).fingerprint == result["fingerprint"]
    assert lxd_client.images.exists(old)
    assert not lxd_client.images.get(old).aliases
    # The fixture's later tests expect the alias on the first image: put it back.
    lxd_client.api.images.aliases[baked["alias"]].put(json={"target": old, "description": ""})


@pytest.mark.e2e
def test_failing_package_fails_early_and_cleanly(
    provider_bin: str,
    provider_config: Path,
    e2e_image: str,
    fake_garm: FakeGarm,
    lxd_client: pylxd.Client,
) -> None:
    """A --package apt cannot install: one line naming the package step and apt's error,
    before the runner is downloaded; the builder deleted and the alias unmoved.

    The e2e image has no package sources, so apt fails at once with "Unable to locate package",
    as it does for a misspelt name on a real mirror.
    """
    missing = f"no-such-package-{secrets.token_hex(3)}"
    started = time.time()
    with parked_alias(lxd_client, e2e_image) as (alias, fingerprint):
        done = image_build(provider_bin, provider_config, "--from", e2e_image, "--alias", alias,
                           *runner_args(fake_garm), "--package", "sudo",
                           "--package", missing)  # fmt: skip
        line = assert_nothing_left(done, lxd_client, alias, fingerprint)
    assert line == (
        f"image build failed: the package step (curl tar sudo {missing}) failed: "
        f"E: Unable to locate package {missing}"
    )
    assert builder_name(done.stderr)
    assert downloads_since(fake_garm, started) == []


# A static file server: binds port 0 on argv[2], serves argv[1], writes its port to argv[3].
STATIC_SERVER = """
import functools, http.server, os, sys
root, host, ready = sys.argv[1:4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
server = http.server.ThreadingHTTPServer((host, 0), handler)
with open(ready + ".tmp", "w") as out:
    out.write(str(server.server_port))
os.rename(ready + ".tmp", ready)
server.serve_forever()
"""


@contextmanager
def simplestreams_remote(
    netns: str, bind: str, work: Path, tarball: Path, alias: str
) -> Iterator[tuple[str, str]]:
    """Serve `tarball` (a unified LXD image) as a one-image simplestreams remote in `netns`.

    Yields the remote's address and the served image's fingerprint. One empty gzip member is
    appended: the same image, another fingerprint, so the server downloads it rather than
    reusing the copy it already holds.
    """
    root = work / "simplestreams"
    (root / "streams" / "v1").mkdir(parents=True)
    (root / "images").mkdir()
    served = root / "images" / "lxd_combined.tar.gz"
    with served.open("wb") as out, tarball.open("rb") as source:
        shutil.copyfileobj(source, out)
        out.write(gzip.compress(b""))
    fingerprint = hashlib.sha256(served.read_bytes()).hexdigest()
    item = {"ftype": "lxd_combined.tar.gz", "path": "images/lxd_combined.tar.gz",
            "sha256": fingerprint, "size": served.stat().st_size}  # fmt: skip
    product = {"aliases": alias, "arch": "amd64", "os": "debian", "release": "bookworm",
               "versions": {"20261206_0000": {"items": {"lxd_combined.tar.gz": item}}}}  # fmt: skip
    products = {"content_id": "images", "datatype": "image-downloads", "format": "products:1.0",
                "products": {"garm:e2e:amd64": product}}  # fmt: skip
    index = {"format": "index:1.0", "index": {"images": {
        "datatype": "image-downloads", "path": "streams/v1/images.json",
        "format": "products:1.0", "products": ["garm:e2e:amd64"]}}}  # fmt: skip
    (root / "streams" / "v1" / "images.json").write_text(json.dumps(products))
    (root / "streams" / "v1" / "index.json").write_text(json.dumps(index))
    ready = work / "port"
    process = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", STATIC_SERVER, str(root), bind,
         str(ready)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline, "no static server"
            time.sleep(0.1)
        yield f"http://{bind}:{ready.read_text()}", fingerprint
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.e2e
def test_build_from_a_simplestreams_remote(
    provider_bin: str,
    lxd_env: LxdEnv,
    lxd_client: pylxd.Client,
    e2e_image: str,
    fake_garm: FakeGarm,
    bridge_address: str,
    tmp_path: Path,
) -> None:
    """--from remote:alias through the config's image_remotes: the server pulls the base image
    from a simplestreams remote (served in the test network namespace), and the image records it.
    """
    tarball = max(IMAGE_CACHE.glob(f"{e2e_image}-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    alias = f"e2e-remote-{secrets.token_hex(3)}"
    made = ""
    with simplestreams_remote(lxd_env.netns, bridge_address, tmp_path, tarball, "garm/e2e") as (
        addr,
        pulled,
    ):
        config = remote_config(tmp_path, lxd_env, {"e2ess": addr})
        try:
            done = image_build(provider_bin, config, "--from", "e2ess:garm/e2e", "--alias", alias,
                               *runner_args(fake_garm))  # fmt: skip
            assert done.returncode == 0, done.stderr
            made = json.loads(done.stdout)["fingerprint"]
            image = lxd_client.images.get_by_alias(alias)
            assert image.fingerprint == made
            assert image.properties["garm_base_image"] == f"e2ess:garm/e2e ({pulled[:12]})"
            assert image.properties["garm_runner_version"] == "2.321.0"
            name = builder_name(done.stderr)
            assert name and not lxd_client.instances.exists(name)
            # The server pulled the base image from the remote and keeps it as a cached copy.
            assert lxd_client.images.get(pulled).cached
        finally:
            if made:
                lxd_client.api.images.aliases[alias].delete()
                delete_image(lxd_client, made)
            delete_image(lxd_client, pulled)


# -- Incus ---------------------------------------------------------------------------------------

# tests/env/lxd-env.sh (GARM_TEST_CACHE_DIR) and tests/e2e/build-image.sh: the image tarball.
IMAGE_CACHE = Path("/var/cache/garm-provider-lxd-test/images")
INCUS_NETNS = "garm-incus"  # tests/env/incus/incus-env.sh (GARM_INCUS_NETNS)


@pytest.mark.e2e
@pytest.mark.incus
def test_build_on_incus(
    provider_bin: str,
    incus_env: IncusEnv,
    incus_client: pylxd.Client,
    e2e_image: str,
    tmp_path: Path,
) -> None:
    """The same build against Incus, from the e2e image named by fingerprint."""
    tarball = max(IMAGE_CACHE.glob(f"{e2e_image}-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    fingerprint = hashlib.sha256(tarball.read_bytes()).hexdigest()
    imported = not incus_client.images.exists(fingerprint)
    if imported:
        incus_client.images.create(tarball.read_bytes(), public=False, wait=True)
    bridge = incus_client.networks.get(incus_env.bridge).config["ipv4.address"].split("/")[0]
    server = FakeGarm.start(INCUS_NETNS, bridge, tmp_path / "fake-garm", None)
    config = tmp_path / "incus.toml"
    config.write_text(f"unix_socket_path = {json.dumps(incus_env.socket)}\n")
    alias = f"e2e-baked-{secrets.token_hex(3)}"
    made = ""
    try:
        done = image_build(provider_bin, config, "--from", fingerprint, "--alias", alias,
                           "--runner-url", server.download_url,
                           "--runner-sha256", server.runner_sha256)  # fmt: skip
        assert done.returncode == 0, done.stderr
        made = json.loads(done.stdout)["fingerprint"]
        image = incus_client.images.get_by_alias(alias)
        assert image.fingerprint == made
        assert image.properties["garm_runner_version"] == "2.321.0"
        assert image.properties["garm_base_image"] == f"{fingerprint} ({fingerprint[:12]})"
        name = builder_name(done.stderr)
        assert name and not incus_client.instances.exists(name)
        downloads = [e for e in server.events() if e["kind"] == "download"]
        assert [e["code"] for e in downloads] == [200]
    finally:
        server.stop()
        if made:
            delete_image(incus_client, made)
        if imported:
            delete_image(incus_client, fingerprint)
