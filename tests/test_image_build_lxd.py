"""`garm-provider-lxd image build` on the real test LXD, the builds that fail fast: a missing
base image, profile or remote, a runner without a checksum, a signal at any point, a FIFO in the
builder, a builder stopped early, a VM builder the server or image cannot run. Nothing may be
left behind. Options and script without a server are in
test_image_build.py; whole builds (e2e) in test_image_build_e2e.py. See docs/runner-images.md.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pylxd
import pytest
from adversarial_corpus import Case, invocation, load_cases
from conftest import LxdEnv
from corpus_runs import check_outcome, run_case
from image_build_runs import (
    UNUSED_RUNNER,
    RunningBuild,
    assert_nothing_left,
    builder_name,
    delete_image,
    image_build,
    one_error_line,
    parked_alias,
    remote_config,
)

from garm_provider_lxd.admin.image_build import BUILDER_PREFIX, POLL_SECONDS, STATE_DIR

# The bridge's address (a closed port on it) comes from the end-to-end fixtures.
pytest_plugins = ["e2e.fixtures"]


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


OPERATOR_CASES = load_cases(via="operator")
IMAGE_BUILD_CASES = [
    case
    for case in OPERATOR_CASES
    if case.spec["argv"][:2] == ["image", "build"] and "interrupt" not in case.spec
]
# The corpus's signals at points of a build (testdata/adversarial/operator).
INTERRUPT_CASES = [case for case in OPERATOR_CASES if "interrupt" in case.spec]


@pytest.mark.parametrize("case", IMAGE_BUILD_CASES, ids=[case.name for case in IMAGE_BUILD_CASES])
def test_unverified_runner_is_refused(
    case: Case,
    provider_bin: str,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
    controller_id: str,
    tmp_path: Path,
) -> None:
    """The corpus's `image build` cases (testdata/adversarial/operator): no checksum is refused
    (https only with the loudly named flag, http never), as are a checksum or URL that is not
    one; one line, exit 1, against the real server and nothing created."""
    before = builders(lxd_client)
    call = invocation(case, tmp_path, lxd_env.socket, controller_id)
    done = run_case(case, call, provider_bin)
    check_outcome(case, done)
    alias = call.argv_tail[call.argv_tail.index("--alias") + 1]
    assert builder_name(done.stderr.decode()) == ""
    assert builders(lxd_client) == before
    assert not lxd_client.images.exists(alias, alias=True)


@pytest.mark.parametrize("case", INTERRUPT_CASES, ids=[case.name for case in INTERRUPT_CASES])
def test_interrupted_build_leaves_no_builder(
    case: Case,
    provider_bin: str,
    lxd_client: pylxd.Client,
    lxd_env: LxdEnv,
    controller_id: str,
    tmp_path: Path,
) -> None:
    """SIGTERM or Ctrl-C at any point the corpus names: exit 1, one line saying so, and no
    builder or alias left.

    The busybox test image has no cloud-init, so the builder waits until it is told to stop.
    """
    before = set(builders(lxd_client))
    call = invocation(case, tmp_path, lxd_env.socket, controller_id)
    alias = call.argv_tail[call.argv_tail.index("--alias") + 1]
    interrupt = case.spec["interrupt"]
    build = RunningBuild.of_case(provider_bin, call)
    build.wait_for(interrupt["after"])
    time.sleep(interrupt.get("delay", 0))
    out, stderr = build.finish(signal.Signals[interrupt["signal"]])
    assert build.process.returncode == case.expect_exit, stderr
    assert out == ""
    problems = [line for line in stderr.splitlines() if not line.startswith("[")]
    assert problems == [f"garm-provider-lxd: {case.expected_stderr()}"], stderr
    name = builder_name(stderr)
    assert name and not lxd_client.instances.exists(name)
    assert set(builders(lxd_client)) <= before
    assert not lxd_client.images.exists(alias, alias=True)


def test_fifo_in_the_builder_does_not_keep_it(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, lxd_env: LxdEnv
) -> None:
    """Code in the builder makes its step file a FIFO: the build's polls do not wait on it (they
    read over SFTP and refuse what is not a regular file), so SIGTERM still deletes the builder.

    Through LXD's plain file API the poll waits for a writer, and LXD cannot stop the builder
    meanwhile: the clean-up gives up and the builder stays.
    """
    build = RunningBuild(provider_bin, provider_config, "--from", lxd_env.image, "--alias", "x",
                         *UNUSED_RUNNER)  # fmt: skip
    name = build.wait_for("waiting for cloud-init")
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LXD_DIR": lxd_env.lxd_dir}
    subprocess.run(["lxc", "exec", name, "--", "sh", "-c", f"mkdir -p {STATE_DIR}; "
                    f"mkfifo {STATE_DIR}/step"], env=env, check=True, timeout=60)  # fmt: skip
    time.sleep(3 * POLL_SECONDS)  # a few polls: each reads the step file
    _, stderr = build.finish(signal.SIGTERM)
    assert build.process.returncode == 1, stderr
    assert stderr.splitlines()[-1] == "garm-provider-lxd: interrupted by signal 15"
    assert not lxd_client.instances.exists(name)


def test_builder_stopped_early_is_not_published(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, lxd_env: LxdEnv
) -> None:
    """Someone stops the builder before it sealed: exit 1, nothing published, builder gone."""
    alias = f"never-{secrets.token_hex(3)}"
    build = RunningBuild(provider_bin, provider_config, "--from", lxd_env.image, "--alias", alias,
                         *UNUSED_RUNNER)  # fmt: skip
    name = build.wait_for("waiting for cloud-init")
    lxd_client.instances.get(name).stop(force=True, wait=True)
    try:
        out, stderr = build.finish(None, timeout=120)
    finally:  # a regression publishes the alias: do not leave it behind
        if lxd_client.images.exists(alias, alias=True):
            lxd_client.images.get_by_alias(alias).delete(wait=True)
    assert build.process.returncode == 1, stderr
    assert out == ""
    last = stderr.splitlines()[-1]
    assert last.startswith("garm-provider-lxd: image build: the builder stopped before the build")
    assert not lxd_client.instances.exists(name)
    assert not lxd_client.images.exists(alias, alias=True)


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


def test_a_builder_lxd_will_not_delete_is_named_with_the_command_to_delete_it(
    provider_bin: str, provider_config: Path, lxd_client: pylxd.Client, lxd_env: LxdEnv
) -> None:
    """A builder LXD refuses to delete (someone set security.protection.delete on it): the
    clean-up retries until its deadline, then one line names the builder, LXD's reason and the
    command that deletes it; the build still ends with its own line and exit 1, and the command
    works once the protection is gone.
    """
    build = RunningBuild(provider_bin, provider_config, "--from", lxd_env.image, "--alias", "x",
                         *UNUSED_RUNNER, "--cleanup-timeout", "5")  # fmt: skip
    name = build.wait_for("waiting for cloud-init")
    builder = lxd_client.api.instances[name]
    builder.patch(json={"config": {"security.protection.delete": "true"}})
    try:
        out, stderr = build.finish(signal.SIGTERM)
        assert build.process.returncode == 1, stderr
        assert out == ""
        assert stderr.splitlines()[-1] == "garm-provider-lxd: interrupted by signal 15"
        left = [line for line in stderr.splitlines() if " is still there " in line]
        assert len(left) == 1, stderr
        assert f"the builder {name} is still there after 5 s of clean-up (" in left[0]
        assert "protected" in left[0]  # LXD's reason
        command = left[0].partition("; delete it with: ")[2]
        assert command == f"lxc delete --force --project default {name}"
        assert lxd_client.instances.exists(name)
        builder.patch(json={"config": {"security.protection.delete": "false"}})
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LXD_DIR": lxd_env.lxd_dir}
        deleted = subprocess.run(command.split(), env=env, capture_output=True, text=True,
                                 timeout=120, check=False)  # fmt: skip
        assert deleted.returncode == 0, deleted.stderr
        assert not lxd_client.instances.exists(name)
    finally:
        if lxd_client.instances.exists(name):
            builder.patch(json={"config": {"security.protection.delete": "false"}})
            instance = lxd_client.instances.get(name)
            if instance.status != "Stopped":
                instance.stop(force=True, wait=True)
            instance.delete(wait=True)
