"""The provider over HTTPS to the test daemon: pinning, CA checks and client identity."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability.harness import Outcome, garm_env, one_line_failure, run, tagged, write_config
from reliability.tlsenv import Tls, ip_binary

pytestmark = pytest.mark.reliability
pytest_plugins = ["reliability.fixtures"]


def _config(tmp_path: Path, tls: Tls, **overrides: object) -> Path:
    values: dict[str, object] = {
        "url": tls.url,
        "client_certificate": str(tls.client.cert),
        "client_key": str(tls.client.key),
        "tls_server_certificate": str(tls.server_cert),
        "include_default_profile": False,
        "instance_type": "container",
        "project_name": "default",
        "request_timeout_seconds": 10,
        "address_wait_seconds": 3,
    }
    values.update(overrides)
    return write_config(tmp_path / f"tls-{uuid.uuid4().hex[:6]}.toml", **values)


def _in_netns(
    provider_bin: str, tls: Tls, command: str, config: Path, controller: str, **kw: Any
) -> Outcome:
    stdin = kw.pop("stdin", b"")
    env = garm_env(command, config, controller, **kw)
    return run(
        provider_bin, env, stdin, timeout=120, wrapper=(ip_binary(), "netns", "exec", tls.netns)
    )


def test_pinned_server_certificate_runs_the_whole_cycle(
    provider_bin: str,
    tls: Tls,
    tmp_path: Path,
    controller: str,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
) -> None:
    config = _config(tmp_path, tls)
    name = f"garm-tls-{uuid.uuid4().hex[:8]}"
    boot = bootstrap(name)
    pool = boot["pool_id"]
    created = _in_netns(
        provider_bin,
        tls,
        "CreateInstance",
        config,
        controller,
        pool_id=pool,
        stdin=json.dumps(boot).encode(),
    )
    assert created.returncode == 0, created.error
    assert created.json()["status"] == "running"
    assert lxd_client.instances.get(name).status == "Running"
    listed = _in_netns(provider_bin, tls, "ListInstances", config, controller, pool_id=pool)
    assert listed.returncode == 0, listed.error
    assert [item["name"] for item in listed.json()] == [name]
    deleted = _in_netns(provider_bin, tls, "DeleteInstance", config, controller, instance_id=name)
    assert deleted.returncode == 0, deleted.error
    assert tagged(lxd_client, controller) == {}


REFUSALS: dict[str, tuple[Callable[[Tls], dict[str, object]], str]] = {
    # The pinned certificate is another one: the handshake must fail on the server's identity.
    "wrong-pinned-cert": (
        lambda t: {"tls_server_certificate": str(t.impostor.cert)},
        r"TLS handshake .*failed",
    ),
    # The client certificate file does not exist.
    "client-cert-absent": (
        lambda t: {"client_certificate": str(t.client.cert) + ".missing"},
        r"client_certificate.*cannot read",
    ),
    # A well-formed certificate the server does not trust.
    "untrusted-client-cert": (
        lambda t: {"client_certificate": str(t.stranger.cert), "client_key": str(t.stranger.key)},
        r"(?i)not (authorized|trusted)|untrusted|forbidden|403",
    ),
    # A CA that did not sign the server's certificate.
    "foreign-ca": (
        lambda t: {"tls_server_certificate": "", "tls_ca": str(t.ca.cert)},
        r"TLS handshake .*failed",
    ),
    # A key that belongs to another certificate: an operator mistake, not an internal error.
    "key-of-another-cert": (
        lambda t: {"client_key": str(t.stranger.key)},
        r"^(?!internal error).*client_key does not belong",
    ),
    # Neither pin nor CA: the system trust store does not know LXD's self-signed certificate.
    "system-roots": (lambda t: {"tls_server_certificate": ""}, r"TLS handshake .*failed"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_identities_fail_with_one_clear_line(
    provider_bin: str,
    tls: Tls,
    tmp_path: Path,
    controller: str,
    bootstrap: Callable[..., dict[str, Any]],
    lxd_client: Any,
    case: str,
) -> None:
    overrides, pattern = REFUSALS[case]
    config = _config(tmp_path, tls, **overrides(tls))
    boot = bootstrap(f"garm-tls-{uuid.uuid4().hex[:8]}")
    for command, kw in (
        ("ListInstances", {"pool_id": boot["pool_id"]}),
        ("GetInstance", {"instance_id": boot["name"]}),
        ("CreateInstance", {"pool_id": boot["pool_id"], "stdin": json.dumps(boot).encode()}),
    ):
        line = one_line_failure(_in_netns(provider_bin, tls, command, config, controller, **kw))
        assert re.search(pattern, line), (command, line)
    assert not lxd_client.instances.exists(boot["name"])
    assert tagged(lxd_client, controller) == {}
