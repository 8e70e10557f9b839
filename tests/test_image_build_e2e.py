"""`garm-provider-lxd image build` end to end: a real runner image baked on the test LXD (and
Incus), and runners that boot from it with the default install script and with GARM's own
template; the ways a whole build fails. Marked `e2e` (slow). See docs/runner-images.md.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import shutil
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
from e2e.harness import SEED_TEMPLATE, FakeGarm, runner_service
from e2e.runner_tarball import FILENAME
from image_build_runs import (
    ANY_SHA256,
    assert_nothing_left,
    builder_name,
    delete_image,
    image_build,
    one_error_line,
    parked_alias,
    remote_config,
)

# Fixtures shared with the end-to-end scenarios (same fake GARM, same image, same bridge).
pytest_plugins = ["e2e.fixtures", "incus_daemon"]
# Type-only: importing the fixture module would load it before pytest_plugins does.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from incus_daemon import IncusEnv

RUNNER_DIR = "/home/runner/actions-runner"


def runner_args(garm: FakeGarm) -> tuple[str, ...]:
    """--runner-url and --runner-sha256 of the stub runner the fake GARM serves."""
    return ("--runner-url", garm.download_url, "--runner-sha256", garm.runner_sha256)


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
