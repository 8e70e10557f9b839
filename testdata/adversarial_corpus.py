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
# operator commands (`operator` cases without a runner or a signal are run offline).
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
    "operator": {"argv", "runner_file", "interrupt", "config_toml"},
    "race": {"hold_loser_until", "rounds", "expect_loser_exit", "expect_loser_stderr"},
    "transport": {"framing", "body_bytes"},
    "host_addresses": {"reported", "reported_repeat", "expect_kept"},
}
for _via in ("create", "validate", "config"):
    VIA_KEYS[_via] = VIA_KEYS["userdata"]
# A profile the pool names is made on the server first: only a command that reads it may have one.
for _via in ("create", "validate"):
    VIA_KEYS[_via] = VIA_KEYS[_via] | {"profile"}
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
PROFILE_KEYS = ("config", "devices")
PROFILE_PLACEHOLDER = "{profile}"
# What an `image build` case may be interrupted by, and the progress lines it may wait for.
INTERRUPT_SIGNALS = ("SIGTERM", "SIGINT")
INTERRUPT_AFTER = ("creating builder", "waiting for cloud-init")
INTERRUPT_MAX_DELAY = 5.0
IMAGE_BUILD_ARGV = ["image", "build", "--config", "{config}"]


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
            setting = "runner_file" in self.spec or "interrupt" in self.spec
            return setting or "{runner}" in self.spec["argv"]
        return self.via not in ("userdata", "host_addresses")

    @property
    def one_process(self) -> bool:
        """Whether invocation() makes the case one provider process (no runner, profile, signal,
        server or race to set up first)."""
        return self.via in PROCESS_VIAS and not self.setting_keys

    @property
    def setting_keys(self) -> list[str]:
        """The keys that make a case of a one-process via need a setting: a runner with a file,
        a profile on the server, a signal at a point of the run."""
        return [key for key in ("runner_file", "profile", "interrupt") if key in self.spec]

    def expected_stderr(self, runner: str = "", profile: str = "") -> str:
        """expect_stderr with the runner's name in place of {runner}, the profile's of {profile}."""
        return self.expect_stderr.replace("{runner}", runner).replace(PROFILE_PLACEHOLDER, profile)

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
        if "interrupt" in spec:
            _check_interrupt(name, spec)
    if "profile" in spec:
        _check_profile(name, spec)
    elif name.split("/")[0] == "profiles":
        raise ValueError(f"{name}: a case of profiles needs the profile the pool names")
    elif PROFILE_PLACEHOLDER in json.dumps([spec.get("bootstrap"), spec.get("extra_specs")]):
        raise ValueError(f"{name}: {PROFILE_PLACEHOLDER} without a profile to make")
    if via == "race":
        if spec["hold_loser_until"] not in HOLD_LOSER_UNTIL:
            raise ValueError(f"{name}: hold_loser_until must be one of {HOLD_LOSER_UNTIL}")
        if not set(spec["expect_loser_exit"]) <= set(LOSER_EXITS) or spec["expect_exit"] != 0:
            raise ValueError(f"{name}: the winner exits 0, the loser one of {LOSER_EXITS}")
    if via == "transport" and spec["framing"] not in FRAMINGS:
        raise ValueError(f"{name}: framing must be one of {FRAMINGS}")
    if via == "host_addresses" and ("reported" in spec) == ("reported_repeat" in spec):
        raise ValueError(f"{name}: exactly one of reported and reported_repeat")


def _check_profile(name: str, spec: dict[str, Any]) -> None:
    """A profile of string maps, named where the pool names its profiles."""
    profile = spec["profile"]
    if (
        not isinstance(profile, dict)
        or not profile
        or set(profile) - set(PROFILE_KEYS)
        or not all(isinstance(profile[key], dict) for key in profile)
    ):
        raise ValueError(f"{name}: profile must be an object of {' and '.join(PROFILE_KEYS)}")
    values = [*profile.get("config", {}).values()]
    for device in profile.get("devices", {}).values():
        values += device.values() if isinstance(device, dict) else [device]
    if not all(isinstance(value, str) for value in values):
        raise ValueError(f"{name}: profile config and device values must be strings")
    in_specs = PROFILE_PLACEHOLDER in (spec.get("extra_specs", {}).get("profiles") or [])
    # GARM's ValidatePoolInfo carries no flavor (invocation() sends it no stdin).
    as_flavor = spec.get("bootstrap", {}).get("flavor") == PROFILE_PLACEHOLDER
    if not in_specs and not (as_flavor and spec["via"] == "create"):
        raise ValueError(
            f"{name}: the pool must name its profile: {PROFILE_PLACEHOLDER} in "
            "extra_specs.profiles, or as the bootstrap's flavor of a create"
        )


def _check_interrupt(name: str, spec: dict[str, Any]) -> None:
    """A signal the command can be sent, after a line it prints, for an `image build`."""
    interrupt = spec["interrupt"]
    if spec["argv"][: len(IMAGE_BUILD_ARGV)] != IMAGE_BUILD_ARGV or "runner_file" in spec:
        raise ValueError(f"{name}: interrupt is for {' '.join(IMAGE_BUILD_ARGV)} ... alone")
    if spec["expect_exit"] != 1:
        raise ValueError(f"{name}: an interrupted build exits 1")
    delay = interrupt.get("delay", 0) if isinstance(interrupt, dict) else None
    if (
        not isinstance(interrupt, dict)
        or set(interrupt) - {"signal", "after", "delay"}
        or interrupt.get("signal") not in INTERRUPT_SIGNALS
        or interrupt.get("after") not in INTERRUPT_AFTER
        or not isinstance(delay, int | float)
        or not 0 <= delay <= INTERRUPT_MAX_DELAY
    ):
        raise ValueError(
            f"{name}: interrupt needs a signal of {INTERRUPT_SIGNALS}, after one of "
            f"{INTERRUPT_AFTER} and a delay of 0 to {INTERRUPT_MAX_DELAY:g} s"
        )


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


def _named(value: Any, profile: str) -> Any:
    """value with the made profile's name in place of {profile} wherever a string is it."""
    if isinstance(value, dict):
        return {key: _named(item, profile) for key, item in value.items()}
    if isinstance(value, list):
        return [_named(item, profile) for item in value]
    return profile if value == PROFILE_PLACEHOLDER else value


def build_bootstrap(case: Case, name: str, profile: str = "") -> dict[str, Any]:
    """Return the case's BootstrapInstance: the base one, its overrides and generated values;
    profile is the name of the profile made for the case, in place of {profile}."""
    overrides = _named(case.spec.get("bootstrap", {}), profile)
    bootstrap = bootstrap_payload(name, **overrides)
    specs = dict(bootstrap.get("extra_specs") or {})
    specs.update(_named(case.spec.get("extra_specs", {}), profile))
    bootstrap["extra_specs"] = specs
    for dotted, parts in case.spec.get("generate", {}).items():
        _set_path(bootstrap, dotted, "".join(text * count for text, count in parts))
    for dotted, shape in case.spec.get("generate_map", {}).items():
        key, value, count = shape["key"], shape["value"], shape["count"]
        _set_path(bootstrap, dotted, {key.format(i=i): value for i in range(count)})
    return bootstrap


def profile_body(case: Case, profile: str) -> dict[str, Any]:
    """The POST /1.0/profiles body that makes the case's profile under the given name."""
    contents = case.spec["profile"]
    return {
        "name": profile,
        "description": f"adversarial corpus: {case.name}",
        "config": dict(contents.get("config", {})),
        "devices": copy.deepcopy(contents.get("devices", {})),
    }


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
    case: Case,
    workdir: Path,
    socket: str,
    controller_id: str,
    runner: str = "",
    profile: str = "",
) -> Invocation:
    """Return how to run the case: the provider's arguments, environment and stdin.

    An operator command runs as a person runs it, with an empty environment; {config} in its
    argv is the case's config file, {runner} the runner the test made. {profile} in a pool's
    specs or flavor is the profile the test made (profile_body gives its contents).
    """
    name = f"adv-{uuid.uuid4().hex[:12]}"
    config = write_config(case, workdir, socket)
    if case.via == "operator":
        argv = [a.replace("{config}", str(config)).replace("{runner}", runner)
                for a in case.spec["argv"]]  # fmt: skip
        return Invocation(argv, {}, b"")
    if "profile" in case.spec and not profile:
        raise ValueError(f"{case.name}: the case names a profile: make it first")
    bootstrap = build_bootstrap(case, name, profile)
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
