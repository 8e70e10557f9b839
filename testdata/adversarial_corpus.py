"""The adversarial corpus: inputs a GARM pool admin controls, each case one JSON file.

Shared by tests/test_bad_input_corpus.py (every case ends as expected, with one short stderr line)
and benches/bench_adversarial.py (CPU time and peak RSS of every case). The format is in
testdata/adversarial/README.md.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import stat
import uuid
from pathlib import Path
from typing import Any

from garm_harness import bootstrap_payload, garm_env

CORPUS = Path(__file__).resolve().parent / "adversarial"
VIAS = ("userdata", "create", "validate", "config")
# What a case may hold; anything else is a typo in the corpus, refused when it loads.
CASE_KEYS = frozenset(
    {"about", "via", "bootstrap", "extra_specs", "generate", "generate_map"}
    | {"config_toml", "config_base", "config_path", "expect_exit", "expect_stderr", "secret"}
)
SPECIAL_CONFIG_PATHS = ("/dev/zero", "fifo", "directory", "big")
BIG_CONFIG_BYTES = 64 << 20


@dataclasses.dataclass(frozen=True)
class Case:
    """One adversarial case as written in its JSON file."""

    name: str
    about: str
    via: str
    spec: dict[str, Any]
    expect_exit: int
    expect_stderr: str = ""
    secret: str = ""  # must never appear in anything the provider prints

    @property
    def needs_lxd(self) -> bool:
        """Whether running the case talks to the LXD daemon."""
        return self.via != "userdata"


@dataclasses.dataclass
class Invocation:
    """A case made concrete: how to run the provider for it, as GARM (or an operator) does."""

    argv_tail: list[str]
    env: dict[str, str]
    stdin: bytes
    instance_name: str = ""
    project: str = "default"  # where a create that succeeds puts the instance


def load_cases(root: Path = CORPUS) -> list[Case]:
    """Read every case under root (one subfolder per kind), sorted by name."""
    cases = []
    for path in sorted(root.glob("*/*.json")):
        name = f"{path.parent.name}/{path.stem}"
        spec = json.loads(path.read_text())
        unknown = sorted(set(spec) - CASE_KEYS)
        if unknown:
            raise ValueError(f"{name}: unknown key {unknown[0]!r}")
        if spec.get("via") not in VIAS:
            raise ValueError(f"{name}: via must be one of {', '.join(VIAS)}")
        if spec.get("expect_exit") not in (0, 1):
            raise ValueError(f"{name}: expect_exit must be 0 or 1")
        if not isinstance(spec.get("about"), str) or not spec["about"]:
            raise ValueError(f"{name}: about must say what the attack is")
        if spec.get("config_path", "/dev/zero") not in SPECIAL_CONFIG_PATHS:
            raise ValueError(f"{name}: config_path must be one of {SPECIAL_CONFIG_PATHS}")
        cases.append(
            Case(
                name=name,
                about=spec["about"],
                via=spec["via"],
                spec=spec,
                expect_exit=spec["expect_exit"],
                expect_stderr=spec.get("expect_stderr", ""),
                secret=spec.get("secret", ""),
            )
        )
    return cases


def _set_path(target: dict[str, Any], dotted: str, value: object) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[keys[-1]] = value


def build_bootstrap(case: Case, name: str) -> dict[str, Any]:
    """Return the case's BootstrapInstance: the base one, its overrides and generated values."""
    bootstrap = bootstrap_payload(name, **copy.deepcopy(case.spec.get("bootstrap", {})))
    specs = dict(bootstrap.get("extra_specs") or {})
    specs.update(copy.deepcopy(case.spec.get("extra_specs", {})))
    bootstrap["extra_specs"] = specs
    for dotted, parts in case.spec.get("generate", {}).items():
        _set_path(bootstrap, dotted, "".join(text * count for text, count in parts))
    for dotted, shape in case.spec.get("generate_map", {}).items():
        key, value, count = shape["key"], shape["value"], shape["count"]
        _set_path(bootstrap, dotted, {key.format(i=i): value for i in range(count)})
    return bootstrap


def write_config(case: Case, workdir: Path, socket: str) -> Path:
    """Write (or make) the config file the case runs with and return its path."""
    special = case.spec.get("config_path")
    if special == "/dev/zero":
        return Path("/dev/zero")
    if special == "directory":
        path = workdir / "config-directory"
        path.mkdir(exist_ok=True)
        return path
    if special == "fifo":
        path = workdir / "config-fifo"
        if not path.exists():
            os.mkfifo(path)
        if not stat.S_ISFIFO(path.stat().st_mode):
            raise RuntimeError(f"{path} is not a FIFO")
        return path
    path = workdir / "garm-provider-lxd.toml"
    text = ""
    if case.spec.get("config_base", True):
        text = f'unix_socket_path = {json.dumps(socket)}\nproject_name = "default"\n'
    text += case.spec.get("config_toml", "")
    if special == "big":
        # A valid TOML file far larger than any config: comment lines after the real keys.
        line = "# " + "x" * 1021 + "\n"
        text += line * (BIG_CONFIG_BYTES // len(line))
    path.write_text(text)
    return path


def invocation(case: Case, workdir: Path, socket: str, controller_id: str) -> Invocation:
    """Return how to run the case: the provider's arguments, environment and stdin."""
    name = f"adv-{uuid.uuid4().hex[:12]}"
    config = write_config(case, workdir, socket)
    bootstrap = build_bootstrap(case, name)
    payload = json.dumps(bootstrap, separators=(",", ":")).encode()
    if case.via == "userdata":
        return Invocation(["userdata", "--config", str(config)], {}, payload)
    command = {"create": "CreateInstance", "validate": "ValidatePoolInfo"}.get(
        case.via, "ListInstances"
    )
    env = garm_env(
        command,
        config,
        controller_id,
        pool_id=bootstrap["pool_id"],
        extra_specs=None if command == "ListInstances" else bootstrap["extra_specs"],
    )
    if case.via == "create":
        project = bootstrap["extra_specs"].get("project") or "default"
        return Invocation([], env, payload, instance_name=name, project=str(project))
    return Invocation([], env, b"")
