"""Fixtures of the end-to-end scenarios; test modules load them with pytest_plugins."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LxdEnv, RunProvider

from e2e.driver import Scenario
from e2e.harness import FakeGarm, build_image, make_ca
from e2e.results import Timing, write_results


@pytest.fixture(scope="session")
def e2e_image(lxd_env: LxdEnv) -> str:
    """The cloud-init image, built once per recipe and imported into the test daemon."""
    return build_image(lxd_env.lxd_dir)


@pytest.fixture(scope="session")
def bridge_address(lxd_client: Any, lxd_env: LxdEnv) -> str:
    """The bridge's IPv4 address: where containers reach the fake GARM."""
    cidr: str = lxd_client.networks.get(lxd_env.bridge).config["ipv4.address"]
    return cidr.split("/")[0]


@pytest.fixture(scope="session")
def e2e_ca(
    tmp_path_factory: pytest.TempPathFactory, bridge_address: str
) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signed for the fake GARM's HTTPS port."""
    return make_ca(tmp_path_factory.mktemp("ca"), bridge_address)


@pytest.fixture(scope="session")
def fake_garm(
    lxd_env: LxdEnv,
    bridge_address: str,
    tmp_path_factory: pytest.TempPathFactory,
    e2e_ca: tuple[Path, Path, Path],
) -> Iterator[FakeGarm]:
    """The GARM-like server, running in the daemon's network namespace for this session."""
    _, cert, key = e2e_ca
    state = tmp_path_factory.mktemp("fake-garm")
    server = FakeGarm.start(lxd_env.netns, bridge_address, state, tls=(cert, key))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def timings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Timing]]:
    """Scenario timings, written after a run of every scenario: to $GARM_E2E_RESULTS when set
    (benches/results/e2e.md, on purpose), else to the session's temporary directory, so a test
    run never changes the checkout."""
    rows: list[Timing] = []
    yield rows
    # Every scenario is a test of test_e2e.py; other modules' runs never write the table.
    module = sys.modules.get("test_e2e")
    defined = [name for name in vars(module) if name.startswith("test_")] if module else []
    # A partial run (-k, or stopped early by -x) must not replace the full table.
    if defined and len({row.scenario for row in rows}) == len(defined):
        chosen = os.environ.get("GARM_E2E_RESULTS")
        path = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "e2e.md"
        write_results(rows, path)
        print(f"\ne2e timings: {path}")


@pytest.fixture
def scenario(
    run_provider: RunProvider,
    provider_config: Path,
    controller_id: str,
    bootstrap: Callable[..., dict[str, Any]],
    e2e_image: str,
    fake_garm: FakeGarm,
    lxd_env: LxdEnv,
    lxd_client: Any,
    timings: list[Timing],
) -> Scenario:
    """One scenario's driver, bound to a fresh controller id."""
    return Scenario(
        run_provider,
        provider_config,
        controller_id,
        bootstrap,
        e2e_image,
        fake_garm,
        lxd_env.lxd_dir,
        lxd_client,
        lxd_env.pool,
        timings,
    )
