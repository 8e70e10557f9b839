"""The adversarial corpus: inputs a GARM pool admin, runner code, another GARM controller, the
LXD server or an operator's command line controls, each case one JSON file.

Shared by tests/test_bad_input_corpus.py and the tests that make a case's setting (every case
ends as expected, with one short stderr line) and benches/bench_adversarial.py (CPU time and peak
RSS of every case that is one provider process). The format is in testdata/adversarial/README.md.
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
# Cases that are one provider process, run by invocation(): GARM's commands and `userdata`, and
# operator commands (`operator` cases without a runner are run offline).
PROCESS_VIAS = ("userdata", "create", "validate", "config", "operator")
# Cases that need a setting of their own, each run by the test named in the README.
SETTING_VIAS = ("race", "transport", "host_addresses")
VIAS = PROCESS_VIAS + SETTING_VIAS
COMMON_KEYS = frozenset({"about", "via", "expect_exit", "expect_stderr", "secret"})
# What a case may hold, by how it runs; anything else is a typo in the corpus, refused when it
# loads, so that a misspelt key cannot turn a case into a no-op.
VIA_KEYS = {
    "userdata": {"bootstrap", "extra_specs", "generate", "generate_map"}
    | {"config_toml", "config_base", "config_path"},
    "operator": {"argv", "runner_file", "config_toml"},
    "race": {"hold_loser_until", "rounds", "expect_loser_exit", "expect_loser_stderr"},
    "transport": {"framing", "body_bytes"},
    "host_addresses": {"reported", "reported_repeat", "expect_kept"},
}
for _via in ("create", "validate", "config"):
    VIA_KEYS[_via] = VIA_KEYS["userdata"]
# What each via needs besides about, via and (but for host_addresses) expect_exit.
REQUIRED_KEYS = {
    "operator": {"argv"},
    "race": {"hold_loser_until", "rounds", "expect_loser_exit", "expect_loser_stderr"},
    "transport": {"framing", "body_bytes"},
    "host_addresses": {"expect_kept"},
}
SPECIAL_CONFIG_PATHS = ("/dev/zero", "fifo", "directory", "big")
BIG_CONFIG_BYTES = 64 << 20
RUNNER_FILE_TYPES = ("fifo", "symlink", "directory")
HOLD_LOSER_UNTIL = ("winner-done", "winner-started")
FRAMINGS = ("chunked", "length")
LOSER_EXITS = (1, 31)


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
    def kind(self) -> str:
        """The corpus folder the case is in (specs, operator, race, ...)."""
        return self.name.split("/")[0]

    @property
    def needs_lxd(self) -> bool:
        """Whether running the case talks to the LXD daemon."""
        if self.via == "operator":
            return "runner_file" in self.spec or "{runner}" in self.spec["argv"]
        return self.via not in ("userdata", "host_addresses")

    @property
    def one_process(self) -> bool:
        """Whether invocation() makes the case one provider process (no runner, server or race
        to set up first)."""
        return self.via in PROCESS_VIAS and "runner_file" not in self.spec

    def expected_stderr(self, runner: str = "") -> str:
        """expect_stderr with the runner's name in place of {runner}."""
        return self.expect_stderr.replace("{runner}", runner)

    @property
    def reported(self) -> str:
        """host_addresses: what the server reports as one of its addresses."""
        if "reported_repeat" in self.spec:
            text, count = self.spec["reported_repeat"]
            return str(text) * int(count)
        return str(self.spec["reported"])


@dataclasses.dataclass
class Invocation:
    """A case made concrete: how to run the provider for it, as GARM (or an operator) does."""

    argv_tail: list[str]
    env: dict[str, str]
    stdin: bytes
    instance_name: str = ""
    project: str = "default"  # where a create that succeeds puts the instance


def _check(name: str, spec: dict[str, Any]) -> None:
    """Refuse a case that is not well formed (see testdata/adversarial/README.md)."""
    via = spec.get("via")
    if via not in VIAS:
        raise ValueError(f"{name}: via must be one of {', '.join(VIAS)}")
    unknown = sorted(set(spec) - COMMON_KEYS - VIA_KEYS[via])
    if unknown:
        raise ValueError(f"{name}: unknown key {unknown[0]!r} for via {via}")
    missing = sorted(REQUIRED_KEYS.get(via, set()) - set(spec))
    if missing:
        raise ValueError(f"{name}: via {via} needs {missing[0]!r}")
    if via != "host_addresses" and spec.get("expect_exit") not in (0, 1):
        raise ValueError(f"{name}: expect_exit must be 0 or 1")
    if not isinstance(spec.get("about"), str) or not spec["about"]:
        raise ValueError(f"{name}: about must say what the attack is")
    if spec.get("config_path", "/dev/zero") not in SPECIAL_CONFIG_PATHS:
        raise ValueError(f"{name}: config_path must be one of {SPECIAL_CONFIG_PATHS}")
    if via == "operator":
        argv = spec["argv"]
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(f"{name}: argv must be a list of strings")
        runner_file = spec.get("runner_file")
        if runner_file is not None and (
            set(runner_file) - {"path", "type", "target"}
            or not str(runner_file.get("path", "")).startswith("/")
            or runner_file.get("type") not in RUNNER_FILE_TYPES
        ):
            raise ValueError(
                f"{name}: runner_file needs an absolute path and a type of {RUNNER_FILE_TYPES}"
            )
    if via == "race":
        if spec["hold_loser_until"] not in HOLD_LOSER_UNTIL:
            raise ValueError(f"{name}: hold_loser_until must be one of {HOLD_LOSER_UNTIL}")
        if not set(spec["expect_loser_exit"]) <= set(LOSER_EXITS) or spec["expect_exit"] != 0:
            raise ValueError(f"{name}: the winner exits 0, the loser one of {LOSER_EXITS}")
    if via == "transport" and spec["framing"] not in FRAMINGS:
        raise ValueError(f"{name}: framing must be one of {FRAMINGS}")
    if via == "host_addresses" and ("reported" in spec) == ("reported_repeat" in spec):
        raise ValueError(f"{name}: exactly one of reported and reported_repeat")


def load_cases(root: Path = CORPUS, via: str = "") -> list[Case]:
    """Read every case under root (one subfolder per kind), sorted by name; only those of one
    via when it is given."""
    cases = []
    for path in sorted(root.glob("*/*.json")):
        name = f"{path.parent.name}/{path.stem}"
        spec = json.loads(path.read_text())
        _check(name, spec)
        if via and spec["via"] != via:
            continue
        cases.append(
            Case(
                name=name,
                about=spec["about"],
                via=spec["via"],
                spec=spec,
                expect_exit=spec.get("expect_exit", 0),
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


def invocation(
    case: Case, workdir: Path, socket: str, controller_id: str, runner: str = ""
) -> Invocation:
    """Return how to run the case: the provider's arguments, environment and stdin.

    An operator command runs as a person runs it, with an empty environment; {config} in its
    argv is the case's config file, {runner} the runner the test made.
    """
    name = f"adv-{uuid.uuid4().hex[:12]}"
    config = write_config(case, workdir, socket)
    if case.via == "operator":
        argv = [a.replace("{config}", str(config)).replace("{runner}", runner)
                for a in case.spec["argv"]]  # fmt: skip
        return Invocation(argv, {}, b"")
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
