"""The native extension: LXD transport over the unix socket and HTTPS, instance conversion."""

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
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import LxdEnv

from garm_provider_lxd._native import LxdTransport
from garm_provider_lxd.errors import LxdConnectionError, LxdTimeoutError


@pytest.fixture
def transport(lxd_env: LxdEnv) -> LxdTransport:
    """A transport to the test LXD daemon's unix socket."""
    return LxdTransport(unix_socket=lxd_env.socket, timeout=30.0)


def test_get_server_returns_json_with_api_extensions(transport: LxdTransport) -> None:
    status, body = transport.request("GET", "/1.0")
    assert status == 200
    server = json.loads(body)
    assert server["type"] == "sync"
    assert "instances" in server["metadata"]["api_extensions"]


def test_unknown_path_returns_lxd_json_error(transport: LxdTransport) -> None:
    status, body = transport.request("GET", "/1.0/no-such-thing")
    assert status == 404
    error = json.loads(body)
    assert error["type"] == "error"
    assert error["error_code"] == 404


def test_body_is_sent_as_json(transport: LxdTransport) -> None:
    name = f"native-test-{uuid.uuid4().hex[:12]}"
    payload = json.dumps({"name": name, "description": "transport test"}).encode()
    status, _ = transport.request("POST", "/1.0/profiles", payload)
    assert status in (200, 201)
    try:
        status, body = transport.request("GET", f"/1.0/profiles/{name}")
        assert status == 200
        assert json.loads(body)["metadata"]["description"] == "transport test"
    finally:
        status, _ = transport.request("DELETE", f"/1.0/profiles/{name}")
    assert status == 200
    assert transport.request("GET", f"/1.0/profiles/{name}")[0] == 404


def test_bad_body_gets_lxd_validation_error(transport: LxdTransport) -> None:
    status, body = transport.request("POST", "/1.0/profiles", b'{"name": ""}')
    assert status == 400
    assert json.loads(body)["type"] == "error"


def test_missing_socket_raises_connection_error(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.socket")
    transport = LxdTransport(unix_socket=path)
    with pytest.raises(LxdConnectionError, match=f"cannot connect to LXD at {path}"):
        transport.request("GET", "/1.0")


def test_refused_socket_raises_connection_error(tmp_path: Path) -> None:
    path = str(tmp_path / "closed.socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.close()  # the file stays, nobody listens: connect() is refused
    with pytest.raises(LxdConnectionError, match="refused"):
        LxdTransport(unix_socket=path).request("GET", "/1.0")


@pytest.fixture
def silent_socket(tmp_path: Path) -> Iterator[str]:
    """A unix socket that accepts connections and never answers.

    A fake on purpose: a real LXD cannot be made to stall on demand, and the deadline is what
    is under test here.
    """
    path = str(tmp_path / "silent.socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    try:
        yield path
    finally:
        listener.close()


def test_deadline_raises_timeout_error(silent_socket: str) -> None:
    transport = LxdTransport(unix_socket=silent_socket, timeout=30.0)
    with pytest.raises(LxdTimeoutError, match=f"GET /1.0 to {silent_socket} timed out"):
        transport.request("GET", "/1.0", timeout=0.2)


def test_constructor_deadline_applies_without_per_request_timeout(silent_socket: str) -> None:
    transport = LxdTransport(unix_socket=silent_socket, timeout=0.2)
    with pytest.raises(LxdTimeoutError):
        transport.request("GET", "/1.0")


def test_concurrent_requests_from_eight_threads(transport: LxdTransport) -> None:
    # Alternates a chunked 200 with a Content-Length 404, sharing one transport.
    def fetch(i: int) -> tuple[int, str]:
        status, body = transport.request("GET", "/1.0" if i % 2 else "/1.0/no-such-thing")
        return status, json.loads(body)["type"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, range(160)))
    assert results == [(404, "error"), (200, "sync")] * 80


def test_request_releases_the_gil_and_reports_a_dropped_connection(tmp_path: Path) -> None:
    # A fake server on purpose: it must hold a request open and then hang up without answering,
    # which a real LXD cannot be made to do on demand.
    path = str(tmp_path / "hangup.socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    transport = LxdTransport(unix_socket=path, timeout=60.0)
    errors: list[Exception] = []

    def call() -> None:
        try:
            transport.request("GET", "/1.0")
        except LxdConnectionError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    conn, _ = listener.accept()
    with conn:
        request = conn.recv(65536)
        # The request is in flight in the other thread; had it kept the GIL, this thread could
        # not have run until that request ended.
        in_flight = caller.is_alive()
    caller.join()
    listener.close()
    assert in_flight
    assert request.startswith(b"GET /1.0 HTTP/1.1\r\n")
    assert b"\r\nhost: lxd\r\n" in request.lower()
    assert len(errors) == 1
    assert f"connection to LXD at {path} failed" in str(errors[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of unix_socket and url"),
        ({"unix_socket": "/a", "url": "https://b"}, "exactly one of unix_socket and url"),
        ({"url": "http://lxd:8443"}, "only https://"),
        ({"unix_socket": "/a", "timeout": 0.0}, "timeout must be a positive"),
        ({"url": "https://lxd:8443", "server_cert": b"junk"}, "server_cert: no PEM"),
        ({"url": "https://lxd:8443", "ca_cert": b"junk"}, "ca_cert: no PEM"),
    ],
)
def test_bad_constructor_arguments_raise_value_error(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LxdTransport(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "1.0", "must start with '/'"),
        ("BAD METHOD", "/1.0", "invalid HTTP method"),
        ("GET", "/1.0/a b", "invalid request path"),
    ],
)
def test_bad_request_arguments_raise_value_error(method: str, path: str, message: str) -> None:
    transport = LxdTransport(unix_socket="/nonexistent/unix.socket")
    with pytest.raises(ValueError, match=message):
        transport.request(method, path)


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


def https_get(port: int, host: str = "127.0.0.1", **tls: bytes) -> dict[str, str | None]:
    """GET /1.0 over HTTPS from the local test server and decode its JSON report."""
    transport = LxdTransport(url=f"https://{host}:{port}", timeout=20.0, **tls)
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
