"""Drives one end-to-end scenario: GARM's CreateInstance, the runner's callbacks, DeleteInstance."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .harness import FakeGarm, container_sh, instance_volumes, runner_service
from .results import Timing

# GARM's internal/templates/userdata/linux_wrapper.tmpl: what GARM injects as the pool's
# runner_install_template when the pool has none of its own.
GARM_LINUX_WRAPPER = """#!/bin/bash

set -ex
set -o pipefail

METADATA_URL="{{ .MetadataURL }}"
BEARER_TOKEN="{{ .CallbackToken }}"

curl -H "Authorization: Bearer $BEARER_TOKEN" --retry 5 --retry-delay 5 --retry-connrefused \
--fail $METADATA_URL/install-script/ -o /tmp/real-install.sh
chmod +x /tmp/real-install.sh

/tmp/real-install.sh
rm -f /tmp/real-install.sh
"""


def b64(data: str | bytes) -> str:
    """Standard base64 of text or bytes, as Go encodes []byte in JSON."""
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


@dataclasses.dataclass
class Runner:
    """One runner created through the provider, and what happened to it."""

    name: str
    registration: dict[str, Any]
    create: subprocess.CompletedProcess[bytes]
    started: float
    returned: float
    statuses: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        """The last status callback (empty when there was none)."""
        return self.statuses[-1] if self.statuses else {}

    @property
    def instance(self) -> dict[str, Any]:
        """CreateInstance's stdout, parsed (it must be exactly one JSON value)."""
        parsed: dict[str, Any] = json.loads(self.create.stdout)
        return parsed


@dataclasses.dataclass
class Scenario:
    """Everything a scenario needs: GARM's calling convention, the fake GARM, the daemon."""

    run_provider: Callable[..., subprocess.CompletedProcess[bytes]]
    config: Path
    controller_id: str
    bootstrap: Callable[..., dict[str, Any]]
    image: str
    garm: FakeGarm
    lxd_dir: str
    lxd_client: Any
    pool: str
    timings: list[Timing]

    def payload(self, reg: dict[str, Any], extra_specs: dict[str, Any], **overrides: Any) -> bytes:
        """The BootstrapInstance JSON GARM would write to the provider's stdin."""
        data = self.bootstrap(reg["name"])
        for tool in data["tools"]:
            if tool["os"] == "linux" and tool["architecture"] == "x64":
                tool.update(
                    download_url=reg["download_url"],
                    filename=reg["filename"],
                    sha256_checksum=reg["sha256"],
                )
        data.update(
            {
                "image": self.image,
                "repo_url": reg["repo_url"],
                "callback-url": reg["callback_url"],
                "metadata-url": reg["metadata_url"],
                "instance-token": reg["token"],
                "jit_config_enabled": reg["jit"],
                # GARM sends no labels for JIT runners: they are in the JIT config.
                "labels": None if reg["jit"] else reg["labels"],
                "extra_specs": extra_specs,
            }
        )
        data.update(overrides)
        return json.dumps(data, separators=(",", ":")).encode()

    def create(
        self,
        prefix: str,
        *,
        jit: bool,
        extra_specs: dict[str, Any] | None = None,
        register: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> Runner:
        """Register a runner with the fake GARM and run CreateInstance for it."""
        name = f"e2e-{prefix}-{secrets.token_hex(3)}"
        reg = self.garm.register(name, jit=jit, **(register or {}))
        specs = extra_specs or {}
        stdin = self.payload(reg, specs, **overrides)
        pool_id = json.loads(stdin)["pool_id"]
        started = time.time()
        done = self.run_provider(
            "CreateInstance",
            config=self.config,
            controller_id=self.controller_id,
            pool_id=pool_id,
            extra_specs=specs or None,
            stdin=stdin,
            timeout=300,
        )
        return Runner(name, reg, done, started, time.time())

    def wait(self, runner: Runner) -> Runner:
        """Wait for the runner's final status callback (idle or failed)."""
        runner.statuses = self.garm.wait_final(runner.name)
        return runner

    def record(self, scenario: str, runners: list[Runner]) -> None:
        """Keep this scenario's timings for benches/results/e2e.md."""
        for runner in runners:
            final = runner.final
            self.timings.append(
                Timing(
                    scenario=scenario,
                    runner=runner.name,
                    to_return=runner.returned - runner.started,
                    to_final=(final["t"] - runner.started) if final else None,
                    final=final.get("status", "none"),
                )
            )

    def delete(self, runner: Runner) -> subprocess.CompletedProcess[bytes]:
        """Run DeleteInstance for a runner the way GARM does."""
        return self.run_provider(
            "DeleteInstance",
            config=self.config,
            controller_id=self.controller_id,
            instance_id=runner.name,
        )

    def sh(self, runner: Runner, script: str) -> subprocess.CompletedProcess[str]:
        """Run a shell snippet as root inside the runner's container."""
        return container_sh(self.lxd_dir, runner.name, script)

    def until(self, runner: Runner, script: str, seconds: float = 60.0) -> bool:
        """Wait until a shell snippet succeeds inside the runner's container."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.sh(runner, script).returncode == 0:
                return True
            time.sleep(0.5)
        return False

    def service_active(self, runner: Runner) -> str:
        """`systemctl is-active` of the runner's service inside its container."""
        unit = runner_service(runner.name)
        return self.sh(runner, f"systemctl is-active {unit}").stdout.strip()

    def leftovers(self, name: str) -> list[str]:
        """What of an instance is still on the LXD server (instance or volume)."""
        found = []
        if self.lxd_client.instances.exists(name):
            found.append(f"instance {name}")
        if name in instance_volumes(self.lxd_client, self.pool):
            found.append(f"volume {name}")
        return found
