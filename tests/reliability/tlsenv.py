"""The test daemon over HTTPS: certificates from openssl, trust and address set and undone."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HTTPS_ADDRESS = "127.0.0.1:8443"
IP_CANDIDATES = ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip")


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its private key on disk."""

    cert: Path
    key: Path

    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, as LXD names trusted certificates."""
        der = ssl.PEM_cert_to_DER_cert(self.cert.read_text())
        return hashlib.sha256(der).hexdigest()


def openssl() -> str:
    """Absolute path of the openssl binary."""
    path = shutil.which("openssl", path="/usr/bin:/bin:/usr/local/bin")
    assert path, "openssl is not installed"
    return path


def ip_binary() -> str:
    """Absolute path of iproute2's ip."""
    for candidate in IP_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise AssertionError("iproute2 (ip) is not installed")


def self_signed(directory: Path, name: str, *, ca: bool = False) -> KeyPair:
    """Generate an EC key and a self-signed certificate (a CA one when ca is true)."""
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    extensions = ["-addext", "basicConstraints=critical,CA:TRUE"] if ca else []
    subprocess.run(
        [
            openssl(),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            *extensions,
            "-keyout",
            str(pair.key),
            "-out",
            str(pair.cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return pair


@contextlib.contextmanager
def https_listener(client: Any) -> Iterator[str]:
    """Make the daemon listen on HTTPS (only if it does not yet); yield the address used."""
    config = client.api.get().json()["metadata"].get("config") or {}
    current = str(config.get("core.https_address") or "")
    if current:
        host, _, port = current.rpartition(":")
        # An address without a host (":8443") listens on every address, loopback included.
        yield f"127.0.0.1:{port}" if host in ("", "[::]", "0.0.0.0") else current
        return
    client.api.patch(json={"config": {"core.https_address": HTTPS_ADDRESS}})
    try:
        yield HTTPS_ADDRESS
    finally:
        client.api.patch(json={"config": {"core.https_address": ""}})


@contextlib.contextmanager
def trusted(client: Any, pair: KeyPair, name: str) -> Iterator[None]:
    """Add pair's certificate to the daemon's trust store for the duration."""
    pem = pair.cert.read_bytes()
    fingerprint = pair.fingerprint()
    client.certificates.create("", pem, name=name)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            client.certificates.get(fingerprint).delete()


def trust_fingerprints(client: Any) -> set[str]:
    """The fingerprints of every certificate the daemon trusts."""
    return {cert.fingerprint for cert in client.certificates.all()}


@dataclass(frozen=True)
class Tls:
    """Everything the TLS tests need: the address and the certificates."""

    url: str
    server_cert: Path
    client: KeyPair
    stranger: KeyPair
    impostor: KeyPair
    ca: KeyPair
    netns: str
