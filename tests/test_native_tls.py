"""The native LXD transport over HTTPS: pinned certificates, CAs and client identities."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from garm_provider_lxd._native import LxdTransport
from garm_provider_lxd.errors import LxdConnectionError

# --- HTTPS: a local TLS server (Python's ssl module) with certificates made by openssl ---------


def openssl(*args: str) -> None:
    """Run the openssl command line tool; fail the test with its output if it fails."""
    done = subprocess.run(["openssl", *args], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@dataclasses.dataclass(frozen=True)
class Pki:
    """PEM files for one test run."""

    directory: Path

    def read(self, name: str) -> bytes:
        """The bytes of one generated PEM file."""
        return (self.directory / name).read_bytes()

    def fingerprint(self, cert_name: str) -> str:
        """SHA-256 of a certificate's DER form."""
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(self.read(cert_name).decode())).hexdigest()


# How each client key is made: (file stem, openssl command making <stem>.key).
CLIENT_KEYS = {
    "rsa-pkcs1": ("genrsa", "-traditional", "-out", "{key}", "2048"),
    "rsa-pkcs8": (
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "{key}",
    ),
    "ec-sec1": ("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "{key}"),
    "ec-pkcs8": (
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        "{key}",
    ),
    "ed25519": ("genpkey", "-algorithm", "ED25519", "-out", "{key}"),
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate it issued for "localhost", a self-signed server certificate,
    a second unrelated CA, and one self-signed client certificate per key type."""
    d = tmp_path_factory.mktemp("pki")

    def self_signed(stem: str, subject: str, *extra: str) -> None:
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{d}/{stem}.key")
        openssl("req", "-x509", "-new", "-key", f"{d}/{stem}.key", "-out", f"{d}/{stem}.crt",
                "-days", "2", "-subj", subject, *extra)  # fmt: skip

    self_signed("ca", "/CN=garm test CA", "-addext", "basicConstraints=critical,CA:TRUE")
    self_signed("other-ca", "/CN=other CA", "-addext", "basicConstraints=critical,CA:TRUE")
    self_signed("pinned", "/CN=lxd-server-pinned")
    self_signed("impostor", "/CN=lxd-server-pinned")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{d}/issued.key")
    openssl("req", "-new", "-key", f"{d}/issued.key", "-subj", "/CN=localhost",
            "-out", f"{d}/issued.csr")  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", f"{d}/issued.csr", "-CA", f"{d}/ca.crt", "-CAkey",
            f"{d}/ca.key", "-CAcreateserial", "-days", "2", "-extfile", f"{d}/san.ext",
            "-out", f"{d}/issued.crt")  # fmt: skip
    for stem, command in CLIENT_KEYS.items():
        key = f"{d}/client-{stem}.key"
        openssl(*(part.format(key=key) for part in command))
        openssl("req", "-x509", "-new", "-key", key, "-out", f"{d}/client-{stem}.crt",
                "-days", "2", "-subj", f"/CN=client {stem}")  # fmt: skip
    return Pki(d)


@contextlib.contextmanager
def tls_server(pki: Pki, cert: str) -> Iterator[int]:
    """Serve HTTPS on 127.0.0.1 with `cert`; each response reports the client certificate.

    Python's ssl module stands in for LXD's listener here: pinning and client identity must be
    checked against certificates the test controls (the real listener is tested elsewhere).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.directory / f"{cert}.crt", pki.directory / f"{cert}.key")
    context.verify_mode = ssl.CERT_OPTIONAL
    for stem in CLIENT_KEYS:
        context.load_verify_locations(pki.directory / f"client-{stem}.crt")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError), context.wrap_socket(raw, server_side=True) as conn:
                head = b""
                while b"\r\n\r\n" not in head and (chunk := conn.recv(4096)):
                    head += chunk
                peer = conn.getpeercert(binary_form=True)
                host = re.search(rb"(?im)^host: *(\S+)", head)
                body = json.dumps(
                    {
                        "host": host.group(1).decode() if host else None,
                        "client_sha256": hashlib.sha256(peer).hexdigest() if peer else None,
                    }
                ).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        thread.join()


def https_get(
    port: int,
    host: str = "127.0.0.1",
    *,
    client_cert: bytes | None = None,
    client_key: bytes | None = None,
    server_cert: bytes | None = None,
    ca_cert: bytes | None = None,
) -> dict[str, str | None]:
    """GET /1.0 over HTTPS from the local test server and decode its JSON report."""
    transport = LxdTransport(
        url=f"https://{host}:{port}",
        client_cert=client_cert,
        client_key=client_key,
        server_cert=server_cert,
        ca_cert=ca_cert,
        timeout=20.0,
    )
    status, body = transport.request("GET", "/1.0")
    assert status == 200
    report: dict[str, str | None] = json.loads(body)
    return report


def test_pinned_server_cert_is_accepted_regardless_of_name_and_issuer(pki: Pki) -> None:
    with tls_server(pki, "pinned") as port:
        report = https_get(port, server_cert=pki.read("pinned.crt"))
    assert report == {"host": f"127.0.0.1:{port}", "client_sha256": None}


def test_other_server_cert_is_rejected_when_pinned(pki: Pki) -> None:
    # Same subject, different key: only the bytes tell them apart.
    with tls_server(pki, "impostor") as port, pytest.raises(LxdConnectionError) as caught:
        https_get(port, server_cert=pki.read("pinned.crt"))
    assert "does not match the configured server_cert" in str(caught.value)
    assert f"https://127.0.0.1:{port}" in str(caught.value)


@pytest.mark.parametrize("stem", sorted(CLIENT_KEYS))
def test_client_certificate_is_presented(pki: Pki, stem: str) -> None:
    with tls_server(pki, "pinned") as port:
        report = https_get(
            port,
            server_cert=pki.read("pinned.crt"),
            client_cert=pki.read(f"client-{stem}.crt"),
            client_key=pki.read(f"client-{stem}.key"),
        )
    assert report["client_sha256"] == pki.fingerprint(f"client-{stem}.crt")


def test_ca_cert_verifies_chain_and_host_name(pki: Pki) -> None:
    with tls_server(pki, "issued") as port:
        assert https_get(port, "localhost", ca_cert=pki.read("ca.crt"))["host"] == (
            f"localhost:{port}"
        )
        with pytest.raises(LxdConnectionError, match=r"(?i)not valid for name"):
            https_get(port, "127.0.0.1", ca_cert=pki.read("ca.crt"))
        with pytest.raises(LxdConnectionError, match=r"(?i)unknown ?issuer"):
            https_get(port, "localhost", ca_cert=pki.read("other-ca.crt"))


def test_system_roots_do_not_trust_a_private_ca(pki: Pki) -> None:
    with tls_server(pki, "issued") as port, pytest.raises(LxdConnectionError, match=r"(?i)issuer"):
        https_get(port, "localhost")


def test_mismatched_client_key_is_a_value_error(pki: Pki) -> None:
    with pytest.raises(ValueError, match="client_key does not belong to client_cert"):
        LxdTransport(
            url="https://127.0.0.1:1",
            client_cert=pki.read("client-ec-sec1.crt"),
            client_key=pki.read("client-ed25519.key"),
        )


def test_certificate_in_place_of_key_is_a_value_error(pki: Pki) -> None:
    with pytest.raises(ValueError, match="client_key: no PEM private key"):
        LxdTransport(
            url="https://127.0.0.1:1",
            client_cert=pki.read("client-ec-sec1.crt"),
            client_key=pki.read("client-ec-sec1.crt"),
        )
