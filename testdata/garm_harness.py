"""The provider as GARM runs it, for tests and benchmarks: environment, config, bootstrap, process.

No pytest and no LXD client here: tests/conftest.py, the reliability suite, the adversarial corpus
and benches/ all build their provider runs from these.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

TESTDATA = Path(__file__).resolve().parent
BASE_BOOTSTRAP = TESTDATA / "conformance" / "cases" / "c01_minimal_jit.json"
# The image alias tests/env/lxd-up.sh imports (GARM_TEST_IMAGE in tests/env/lxd-env.sh); a
# constant so that building a bootstrap payload does not need the daemon.
TEST_IMAGE = "busybox"


def bootstrap_payload(name: str, /, **overrides: Any) -> dict[str, Any]:
    """A realistic BootstrapInstance for the test image, overrides applied last."""
    payload: dict[str, Any] = json.loads(BASE_BOOTSTRAP.read_text())
    payload.update(
        name=name,
        image=TEST_IMAGE,
        flavor="default",
        os_type="linux",
        arch="amd64",
        pool_id=str(uuid.uuid4()),
    )
    payload.update(overrides)
    return payload


def encode_extra_specs(extra_specs: object) -> str:
    """Encode extra specs as GARM does for GARM_POOL_EXTRASPECS: base64 of the JSON."""
    return base64.b64encode(json.dumps(extra_specs, separators=(",", ":")).encode()).decode()


def garm_env(
    command: str,
    config: Path | str,
    controller_id: str,
    *,
    pool_id: str = "",
    instance_id: str = "",
    extra_specs: object = None,
    interface_version: str = "v0.1.1",
) -> dict[str, str]:
    """Return the environment GARM gives the provider for one command (and nothing else)."""
    env = {
        "GARM_COMMAND": command,
        "GARM_CONTROLLER_ID": controller_id,
        "GARM_POOL_ID": pool_id,
        "GARM_INSTANCE_ID": instance_id,
        "GARM_PROVIDER_CONFIG_FILE": str(config),
        "GARM_INTERFACE_VERSION": interface_version,
    }
    if interface_version == "v0.1.1":
        env["GARM_POOL_EXTRASPECS"] = encode_extra_specs(extra_specs)
    return env


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value))


def write_config(path: Path, **values: object) -> Path:
    """Write a provider TOML config (a dict value is a [table]); return its path."""
    lines = [f"{key} = {_toml_value(v)}" for key, v in values.items() if not isinstance(v, dict)]
    for table, entries in values.items():
        if isinstance(entries, dict):
            lines.append(f"[{table}]")
            lines += [f"{key} = {_toml_value(v)}" for key, v in entries.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def socket_config(path: Path, socket: str, **values: object) -> Path:
    """Write a config for the daemon (or a proxy) at socket: runners are containers in default."""
    base: dict[str, object] = {
        "unix_socket_path": socket,
        "include_default_profile": False,
        "instance_type": "container",
        "project_name": "default",
    }
    base.update(values)
    return write_config(path, **base)


def run_provider(
    provider_bin: str,
    env: Mapping[str, str],
    stdin: bytes = b"",
    *,
    timeout: float,
    wrapper: Iterable[str] = (),
    args: Iterable[str] = (),
) -> subprocess.CompletedProcess[bytes]:
    """Run the provider once with exactly env and stdin (args only for operator commands)."""
    return subprocess.run(
        [*wrapper, provider_bin, *args],
        input=stdin,
        capture_output=True,
        env=dict(env),
        timeout=timeout,
        check=False,
    )
