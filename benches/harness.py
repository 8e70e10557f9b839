"""Shared state of a command benchmark run: configs, GARM-style invocation, raw LXD helpers."""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

# testdata/garm_harness.py: GARM's environment and the config files, shared with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testdata"))
from garm_harness import garm_env, write_config
from lxdapi import Lxd, force_delete, instance_path, with_project
from proc import Sample, interpreter_of, run

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP_FILE = ROOT / "testdata/conformance/cases/s01_seed_example_base64.json"
USER_DATA_FILE = ROOT / "testdata/conformance/cases/s01_seed_example_base64.userdata"
CMD_CONTROLLER = "5b1f0c3a-0d4e-4a8b-9f61-3c2e7d9a8b10"
CMD_POOL = "a7d2e9c4-1f3b-4e6a-8c5d-9b0f2e4a6c81"
IMAGE = "busybox"


@dataclasses.dataclass
class Budget:
    """Limits one row must meet (None: not budgeted)."""

    overhead_ms: float | None = None
    cpu_ms: float | None = None
    rss_mb: float | None = 30.0
    wall_s: float | None = None


@dataclasses.dataclass
class Row:
    """The measurements of one command (or floor) in the results table."""

    key: str
    label: str
    samples: list[Sample] = dataclasses.field(default_factory=list)
    floor: list[float] = dataclasses.field(default_factory=list)
    floor_what: str = ""
    budget: Budget = dataclasses.field(default_factory=Budget)
    go: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class Bench:
    """Everything a scenario needs to run the provider as GARM does and LXD directly."""

    def __init__(
        self, script: Path, socket_path: str, project: str, list_project: str, workdir: Path
    ) -> None:
        self.script = script
        self.python = interpreter_of(script)
        self.socket_path = socket_path
        self.project = project
        self.list_project = list_project
        self.configs: dict[str, Path] = {}
        nowait: dict[str, object] = {"address_wait_seconds": 0}
        for name, where, extra in (
            ("default", project, {}),
            ("nowait", project, nowait),
            ("list", list_project, nowait),
        ):
            self.configs[name] = write_config(
                workdir / f"{name}.toml", unix_socket_path=socket_path, project_name=where, **extra
            )
        self.lxd = Lxd(socket_path)
        server = self.lxd.call("GET", "/1.0")["metadata"]
        self.extensions = set(server["api_extensions"])
        self.server_version = str(server["environment"]["server_version"])
        self.user_data_key = (
            "cloud-init.user-data" if "cloud_init" in self.extensions else "user.user-data"
        )
        self.user_data = USER_DATA_FILE.read_text()

    # -- the provider, as GARM runs it ----------------------------------------------------------

    def env(
        self, command: str, *, controller: str, pool: str, instance: str, config: str
    ) -> dict[str, str]:
        """Return the complete environment GARM gives the provider (no PATH, no HOME)."""
        return garm_env(
            command, self.configs[config], controller, pool_id=pool, instance_id=instance
        )

    def provider(
        self,
        command: str,
        *,
        controller: str = CMD_CONTROLLER,
        pool: str = CMD_POOL,
        instance: str = "",
        config: str = "nowait",
        stdin: bytes = b"",
        expect: tuple[int, ...] = (0,),
    ) -> Sample:
        """Run one provider process; fail the benchmark on an unexpected exit code."""
        env = self.env(command, controller=controller, pool=pool, instance=instance, config=config)
        sample = run([str(self.script)], env, stdin)
        if sample.returncode not in expect:
            raise RuntimeError(
                f"{command} {instance} exited {sample.returncode}: "
                f"{sample.stderr.decode(errors='replace').strip()}"
            )
        return sample

    def python_pass(self) -> Sample:
        """Run `python -c pass` with the console script's interpreter and an empty env."""
        return run([self.python, "-c", "pass"], {})

    def bootstrap(self, name: str, *, template: bool = False) -> bytes:
        """Return GARM's CreateInstance stdin for name (the s01 case, busybox image).

        Without `template` the pool's runner_install_template is dropped, so the provider
        renders its default install script (Jinja2), as most pools have it.
        """
        data = json.loads(BOOTSTRAP_FILE.read_text())
        data.update(name=name, image=IMAGE, pool_id=CMD_POOL, flavor="default")
        if not template:
            del data["extra_specs"]["runner_install_template"]
        return json.dumps(data, separators=(",", ":")).encode()

    # -- LXD directly ---------------------------------------------------------------------------

    def raw(self) -> Lxd:
        """Return a fresh connection (each provider process opens its own too)."""
        return Lxd(self.socket_path)

    def path(self, path: str, **query: str) -> str:
        """Return path in the command project."""
        return with_project(path, self.project, **query)

    def ipath(self, name: str, suffix: str = "", **query: str) -> str:
        """Return the path of instance name in the command project."""
        return instance_path(name, self.project, suffix, **query)

    def create_body(
        self, name: str, *, controller: str = CMD_CONTROLLER, pool: str = CMD_POOL, nic: bool = True
    ) -> dict[str, Any]:
        """Return a create body shaped like the provider's (tags and real-sized user data)."""
        body: dict[str, Any] = {
            "name": name,
            "type": "container",
            "architecture": "x86_64",
            "profiles": ["default"],
            "config": {
                "user.runner-controller-id": controller,
                "user.runner-pool-id": pool,
                "user.os-type": "linux",
                "user.os-arch": "amd64",
                self.user_data_key: self.user_data,
            },
            "devices": {} if nic else {"eth0": {"type": "none"}},
            "source": {"type": "image", "alias": IMAGE},
        }
        return body

    def make(self, lxd: Lxd, name: str, *, running: bool, **kwargs: Any) -> None:
        """Create (and optionally start) a tagged busybox instance, untimed setup."""
        lxd.run("POST", self.path("/1.0/instances"), self.create_body(name, **kwargs))
        if running:
            lxd.run("PUT", self.ipath(name, "/state"), {"action": "start"})

    def make_many(self, names: list[str], threads: int = 4, **kwargs: Any) -> None:
        """Create and start many instances concurrently (setup, untimed)."""
        local = threading.local()

        def one(name: str) -> None:
            if not hasattr(local, "lxd"):
                local.lxd = self.raw()
            self.make(local.lxd, name, running=True, **kwargs)

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, names))

    def discard(self, *names: str) -> None:
        """Delete instances if they exist (cleanup, untimed)."""
        for name in names:
            force_delete(self.lxd, name, self.project)

    def exists(self, name: str) -> bool:
        """Whether instance name exists in the command project."""
        status, _ = self.lxd.request("GET", self.ipath(name))
        return status == 200

    def count_tagged(self, controller: str) -> int:
        """Return how many instances in the project carry controller's tag."""
        flt = f"config.user.runner-controller-id eq {controller}"
        body = self.lxd.call("GET", self.path("/1.0/instances", filter=flt))
        return len(body["metadata"] or [])


def short_id() -> str:
    """Return 8 random hex digits for unique instance names."""
    return uuid.uuid4().hex[:8]


T = TypeVar("T")
U = TypeVar("U")


def pair(
    rep: int, raw: Callable[[], T], provider: Callable[[], U], settle: float = 0.0
) -> tuple[T, U]:
    """Run the raw floor and the provider, swapping who goes first every round.

    LXD answers the second of two back-to-back heavy requests more slowly (its garbage
    collector and the previous request's work compete), so a fixed order biases the result.
    With `settle` > 0 the server gets that many idle seconds before each of the two runs, so
    neither inherits the other's aftermath (heavy listings need it: see docs/performance.md).
    """
    if rep % 2:
        time.sleep(settle)
        second = provider()
        time.sleep(settle)
        return raw(), second
    time.sleep(settle)
    first = raw()
    time.sleep(settle)
    return first, provider()


def timed(func: Callable[..., object], *args: object) -> float:
    """Call func(*args) and return the seconds it took."""
    begin = time.perf_counter()
    func(*args)
    return time.perf_counter() - begin
