"""The operator commands' pylxd client over HTTPS: pinned certificate, CA, client identity.

Driven through `image build` with a base image that does not exist: reaching "base image ...
not found" proves the connection, the server check and the client certificate all worked,
and nothing is created either way. The daemon listens on its namespace's loopback only
(the `tls` fixture of test_reliability_tls.py), so the command runs inside that namespace.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from reliability.harness import write_config
from reliability.tlsenv import Tls, ip_binary

pytestmark = pytest.mark.reliability
pytest_plugins = ["reliability.fixtures"]


def build_in_netns(provider_bin: str, tls: Tls, config: Path) -> subprocess.CompletedProcess[str]:
    """`image build` from a missing image, run in the daemon's network namespace."""
    missing = f"no-such-image-{uuid.uuid4().hex[:6]}"
    return subprocess.run(
        [ip_binary(), "netns", "exec", tls.netns, provider_bin, "image", "build",
         "--config", str(config), "--from", missing, "--alias", missing,
         "--runner-url", "http://127.0.0.1/r.tar.gz", "--runner-sha256", "0" * 64],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def https_config(tmp_path: Path, tls: Tls, **overrides: object) -> Path:
    """A config for the HTTPS listener with the trusted client and the pinned server cert."""
    values: dict[str, object] = {
        "url": tls.url,
        "client_certificate": str(tls.client.cert),
        "client_key": str(tls.client.key),
        "tls_server_certificate": str(tls.server_cert),
        "project_name": "default",
        "request_timeout_seconds": 10,
    }
    values.update(overrides)
    return write_config(tmp_path / f"https-{uuid.uuid4().hex[:6]}.toml", **values)


def test_pinned_certificate_connects(provider_bin: str, tls: Tls, tmp_path: Path) -> None:
    """The daemon's own certificate pinned: the command gets as far as the image lookup."""
    done = build_in_netns(provider_bin, tls, https_config(tmp_path, tls))
    assert done.returncode == 1
    assert "base image 'no-such-image-" in done.stderr, done.stderr
    assert "not found in project 'default'" in done.stderr


@pytest.mark.parametrize(
    ("case", "overrides"),
    [
        ("another pinned certificate", {"tls_server_certificate": "IMPOSTOR"}),
        ("a CA that did not sign it", {"tls_server_certificate": "", "tls_ca": "CA"}),
        ("an untrusted client", {"client_certificate": "STRANGER", "client_key": "STRANGER_KEY"}),
    ],
)
def test_refused_connections_are_one_line(
    provider_bin: str, tls: Tls, tmp_path: Path, case: str, overrides: dict[str, str]
) -> None:
    """A certificate that does not match, or a client the server does not trust: exit 1."""
    paths = {
        "IMPOSTOR": str(tls.impostor.cert),
        "CA": str(tls.ca.cert),
        "STRANGER": str(tls.stranger.cert),
        "STRANGER_KEY": str(tls.stranger.key),
    }
    resolved = {key: paths.get(value, value) for key, value in overrides.items()}
    done = build_in_netns(provider_bin, tls, https_config(tmp_path, tls, **resolved))
    assert done.returncode == 1, case
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "base image" not in lines[0], f"{case}: {lines[0]}"
    assert "internal error" not in lines[0] and "Traceback" not in done.stderr


def check_in_netns(provider_bin: str, tls: Tls, config: Path) -> subprocess.CompletedProcess[str]:
    """`check` over HTTPS, run in the daemon's network namespace."""
    return subprocess.run(
        [ip_binary(), "netns", "exec", tls.netns, provider_bin, "check", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_check_over_https_with_a_pinned_certificate(
    provider_bin: str, tls: Tls, tmp_path: Path
) -> None:
    done = check_in_netns(provider_bin, tls, https_config(tmp_path, tls))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"at {tls.url} (auth: trusted)" in done.stdout
    assert "ok    profile default exists" in done.stdout


def test_check_reports_an_untrusted_client(provider_bin: str, tls: Tls, tmp_path: Path) -> None:
    config = https_config(
        tmp_path, tls, client_certificate=str(tls.stranger.cert), client_key=str(tls.stranger.key)
    )
    done = check_in_netns(provider_bin, tls, config)
    assert done.returncode == 1
    assert "(auth: untrusted)" in done.stdout
    assert "FAIL  the server does not trust this client" in done.stdout
    assert done.stderr == ""
