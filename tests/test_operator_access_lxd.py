"""check and setup reach LXD through pylxd only, with names percent-encoded, and pick a pool's
profiles by the same rule as CreateInstance and ValidatePoolInfo (instances.instance_profiles)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import LxdEnv, run_operator

from garm_provider_lxd.config import load_config
from garm_provider_lxd.specs import parse_extra_specs

# Stands in for the Rust transport in a child interpreter: constructing it fails the command.
_NO_TRANSPORT = """
import sys
import garm_provider_lxd._native as native

class Refused:
    def __init__(self, *args, **kwargs):
        raise AssertionError("the Rust transport was used")

native.LxdTransport = Refused
from garm_provider_lxd.cli import main

sys.exit(main(sys.argv[1:], environ={}))
"""


def _body(stdout: str) -> dict[str, object]:
    body: dict[str, object] = json.loads(stdout[stdout.index("{") : stdout.rindex("}") + 1])
    return body


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--image", "busybox"],
        ["setup", "--network", "garmnotmade", "--profile", "garm-not-made"],  # the plan only
    ],
)
def test_check_and_setup_do_not_use_the_rust_transport(
    provider_config: Path, args: list[str]
) -> None:
    # Asserts on an internal (which client is built), as the layering rule is internal.
    done = subprocess.run(
        [sys.executable, "-c", _NO_TRANSPORT, args[0], "--config", str(provider_config), *args[1:]],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Rust transport" not in done.stdout + done.stderr


def test_check_percent_encodes_the_flavor(provider_bin: str, provider_config: Path) -> None:
    # Unencoded, "default?x" asks LXD for the profile "default" and the check passes.
    done = run_operator(
        provider_bin, "check", "--config", str(provider_config), "--flavor", "default?x"
    )
    assert done.returncode == 1, done.stdout
    assert "FAIL  profile: profile default?x:" in done.stdout
    assert "ok    profile default?x exists" not in done.stdout


def test_check_uses_the_extra_specs_profiles(
    provider_bin: str, provider_config: Path, tmp_path: Path, lxd_env: LxdEnv
) -> None:
    missing = f"garm-no-profile-{uuid.uuid4().hex[:6]}"
    specs = tmp_path / "specs.json"
    specs.write_text(json.dumps({"profiles": [lxd_env.profile, missing]}))
    config = provider_config.read_text().replace(
        "include_default_profile = false", "include_default_profile = true"
    )
    provider_config.write_text(config)
    done = run_operator(
        provider_bin, "check", "--config", str(provider_config), "--extra-specs", str(specs),
        "--flavor", "flavor-not-used", "--image", "busybox",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert f"ok    profile {lxd_env.profile} exists" in done.stdout
    assert f"FAIL  profile: profile {missing}:" in done.stdout
    assert "flavor-not-used" not in done.stdout.split("CreateInstance would send")[0]
    assert _body(done.stdout)["profiles"] == ["default", missing]  # default once, first


@pytest.mark.parametrize(
    ("include_default", "specs", "flavor", "expected"),
    [
        (False, {}, "small", ["small"]),
        (False, {}, "", []),
        (True, {}, "small", ["default", "small"]),
        (True, {}, "default", ["default"]),
        (False, {"profiles": ["a", "b"]}, "small", ["a", "b"]),
        (True, {"profiles": ["b", "default"]}, "small", ["default", "b"]),
        (True, {"profiles": []}, "small", ["default"]),
    ],
)
def test_instance_profiles(
    tmp_path: Path,
    include_default: bool,
    specs: dict[str, object],
    flavor: str,
    expected: list[str],
) -> None:
    path = tmp_path / "c.toml"
    from garm_provider_lxd.instances import instance_profiles

    include = str(include_default).lower()
    path.write_text(f'unix_socket_path = "/nonexistent"\ninclude_default_profile = {include}\n')
    assert instance_profiles(load_config(str(path)), parse_extra_specs(specs), flavor) == expected
