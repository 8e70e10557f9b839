"""Helpers for the end-to-end tests: the fake GARM process, the image, container checks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .runner_tarball import FILENAME, build_runner_tarball

E2E_DIR = Path(__file__).resolve().parent
BUILD_IMAGE = E2E_DIR / "build-image.sh"
FAKE_GARM = E2E_DIR / "fake_garm.py"
IMAGE_ALIAS = "garm-cloudinit"
REPO_URL = "https://github.com/example-org/example-repo"
# Bounds for things that must happen, not performance expectations.
SERVER_START_SECONDS = 30.0
SERVER_LIFETIME_SECONDS = 1800.0
FINAL_STATUS_SECONDS = 300.0
POLL_SECONDS = 0.2

# GARM's own runner install template, as the seed conformance case carries it.
SEED_TEMPLATE = (
    Path(__file__).resolve().parents[2] / "testdata/conformance/seed_runner_install_template.txt"
)


def build_image(lxd_dir: str) -> str:
    """Build (if the recipe changed) and import the cloud-init image; return its alias."""
    env = {**os.environ, "LXD_DIR": lxd_dir}
    done = subprocess.run(
        ["bash", str(BUILD_IMAGE), "--alias", IMAGE_ALIAS],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=1200,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{BUILD_IMAGE} failed:\n{done.stderr.decode(errors='replace')[-4000:]}")
    return IMAGE_ALIAS


@dataclasses.dataclass
class FakeGarm:
    """A running fake_garm.py inside the test network namespace."""

    process: subprocess.Popen[bytes]
    state_dir: Path
    base_url: str
    tls_base_url: str
    runner_padding: int = 0

    @classmethod
    def start(
        cls,
        netns: str,
        bind: str,
        state_dir: Path,
        tls: tuple[Path, Path] | None,
        runner_padding: int = 0,
        download_mbps: float = 0.0,
    ) -> FakeGarm:
        """Start the server in `netns` on `bind` and wait until it listens."""
        state_dir.mkdir(parents=True, exist_ok=True)
        cmd = ["ip", "netns", "exec", netns, sys.executable, str(FAKE_GARM)]
        cmd += ["--state-dir", str(state_dir), "--bind", bind]
        cmd += ["--lifetime", str(SERVER_LIFETIME_SECONDS)]
        if tls is not None:
            cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        if runner_padding:
            cmd += ["--runner-padding", str(runner_padding)]
        if download_mbps:
            cmd += ["--download-mbps", str(download_mbps)]
        log = (state_dir / "server.log").open("wb")
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        ready = state_dir / "ready.json"
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                text = (state_dir / "server.log").read_text(errors="replace")
                raise RuntimeError(f"fake GARM did not start:\n{text[-2000:]}")
            time.sleep(POLL_SECONDS)
        info = json.loads(ready.read_text())
        return cls(
            process, state_dir, info["base_url"], info.get("tls_base_url", ""), runner_padding
        )

    def stop(self) -> None:
        """Terminate the server (its whole session) and reap it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    @property
    def download_url(self) -> str:
        """Where the fake actions-runner tarball is served."""
        return f"{self.base_url}/tools/{FILENAME}"

    @property
    def runner_sha256(self) -> str:
        """SHA-256 of the runner tarball this server serves."""
        return hashlib.sha256(build_runner_tarball(self.runner_padding)).hexdigest()

    def register(self, name: str, *, jit: bool, **extra: Any) -> dict[str, Any]:
        """Make the server expect runner `name`; return its registration (token included)."""
        inst = {
            "name": name,
            "token": secrets.token_urlsafe(32),
            "jit": jit,
            "agent_id": secrets.randbelow(10**6) + 1000,
            "repo_url": REPO_URL,
            "callback_url": f"{self.base_url}/api/v1/callbacks",
            "metadata_url": f"{self.base_url}/api/v1/metadata",
            "download_url": self.download_url,
            "filename": FILENAME,
            "sha256": self.runner_sha256,
            "labels": ["self-hosted", "linux", "x64", "e2e"],
            **extra,
        }
        path = self.state_dir / "instances" / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(inst))
        tmp.replace(path)
        return inst

    def events(self, instance: str | None = None) -> list[dict[str, Any]]:
        """Every request the server recorded so far (optionally for one instance)."""
        path = self.state_dir / "events.jsonl"
        if not path.exists():
            return []
        found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [e for e in found if instance is None or e.get("instance") == instance]

    def statuses(self, instance: str) -> list[dict[str, Any]]:
        """The status callbacks one runner posted, oldest first (with server timestamps)."""
        return [
            {**e["body"], "t": e["t"]}
            for e in self.events(instance)
            if e["kind"] == "status" and e["code"] == 200
        ]

    def wait_final(self, instance: str) -> list[dict[str, Any]]:
        """Wait for `idle` or `failed` from one runner; return its status callbacks."""
        deadline = time.monotonic() + FINAL_STATUS_SECONDS
        while True:
            found = self.statuses(instance)
            if found and found[-1].get("status") in ("idle", "failed"):
                return found
            if time.monotonic() > deadline or self.process.poll() is not None:
                return found
            time.sleep(POLL_SECONDS)

    def wait_for(self, instance: str | None, kind: str, path: str) -> bool:
        """Wait until a request of `kind` for `path` was recorded."""
        deadline = time.monotonic() + FINAL_STATUS_SECONDS
        while time.monotonic() < deadline:
            if any(e["kind"] == kind and e.get("path") == path for e in self.events(instance)):
                return True
            time.sleep(POLL_SECONDS)
        return False


def make_ca(workdir: Path, server_ip: str) -> tuple[Path, Path, Path]:
    """Create a test CA and a server certificate for `server_ip`: (ca, cert, key) paths."""
    workdir.mkdir(parents=True, exist_ok=True)
    names = ("ca.key", "ca.pem", "tls.key", "tls.csr", "tls.pem")
    ca_key, ca, key, csr, cert = (workdir / n for n in names)
    ext = workdir / "ext.cnf"
    ext.write_text(f"subjectAltName=IP:{server_ip}\nbasicConstraints=CA:FALSE\n")
    ca_ext = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=garm-provider-lxd e2e test CA", "-keyout", ca_key, "-out", ca,
         "-addext", ca_ext[0], "-addext", ca_ext[1]],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={server_ip}",
         "-keyout", key, "-out", csr],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "2", "-extfile", ext, "-out", cert],
    ]  # fmt: skip
    for step in steps:
        subprocess.run(["openssl", *map(str, step)], capture_output=True, check=True)
    return ca, cert, key


def lxc(lxd_dir: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the lxc client against the test daemon."""
    env = {**os.environ, "LXD_DIR": lxd_dir, "LXD_CONF": str(Path(lxd_dir).parent / "lxc-e2e")}
    return subprocess.run(
        ["lxc", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def container_sh(lxd_dir: str, name: str, script: str) -> subprocess.CompletedProcess[str]:
    """Run a shell snippet as root inside a container."""
    return lxc(lxd_dir, "exec", name, "--", "sh", "-c", script)


def runner_service(name: str) -> str:
    """The systemd unit GARM and svc.sh name for a repository runner."""
    return f"actions.runner.example-org-example-repo.{name}.service"


def instance_volumes(client: Any, pool: str) -> list[str]:
    """Names of the instance volumes in a storage pool."""
    urls: Iterable[str] = client.api.storage_pools[pool].volumes.get().json()["metadata"]
    names = []
    for url in urls:
        for kind in ("container", "virtual-machine"):
            if url.startswith(f"/1.0/storage-pools/{pool}/volumes/{kind}/"):
                names.append(url.rsplit("/", 1)[1].split("?")[0])
    return names
