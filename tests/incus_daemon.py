"""The test Incus daemon (tests/env/incus-up.sh) as fixtures; test modules load them with
pytest_plugins."""

from __future__ import annotations

import dataclasses

import pylxd
import pytest
from conftest import REPO_ROOT, run_env_script

INCUS_UP = REPO_ROOT / "tests" / "env" / "incus-up.sh"


@dataclasses.dataclass(frozen=True)
class IncusEnv:
    """Where the test Incus daemon lives and what incus-up.sh reported about it."""

    socket: str
    bridge: str
    image: str
    extensions: frozenset[str]


@pytest.fixture(scope="session")
def incus_env() -> IncusEnv:
    """The private Incus daemon, brought up (idempotently) by tests/env/incus-up.sh."""
    values = run_env_script(INCUS_UP)
    return IncusEnv(
        socket=values["INCUS_SOCKET"],
        bridge=values["INCUS_BRIDGE"],
        image=values["INCUS_IMAGE"],
        extensions=frozenset(filter(None, values["INCUS_EXTENSIONS"].split(","))),
    )


@pytest.fixture(scope="session")
def incus_client(incus_env: IncusEnv) -> pylxd.Client:
    """pylxd pointed at the Incus socket, for assertions independent of the provider."""
    return pylxd.Client(endpoint=incus_env.socket)
