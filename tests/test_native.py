"""The native extension: LXD transport over the unix socket and HTTPS, instance conversion."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
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
from typing import Any

import hypothesis
import pytest
from conftest import LxdEnv
from hypothesis import strategies as st

from garm_provider_lxd._native import LxdTransport, provider_instance, provider_instances
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


# --- instance conversion, checked against a plain-Python reference ----------------------------

# The same names as LINUX_DISTROS in rust/src/instances.rs.
LINUX_DISTROS = frozenset(
    {
        *("alma", "almalinux", "alpine", "alt", "amazonlinux", "arch", "archlinux", "busybox"),
        *("centos", "debian", "devuan", "fedora", "flatcar", "funtoo", "gentoo", "kali"),
        *("linux", "linuxmint", "mint", "nixos", "openeuler", "opensuse", "openwrt", "oracle"),
        *("plamo", "rhel", "rocky", "rockylinux", "slackware", "springdalelinux", "suse"),
        *("ubuntu", "voidlinux"),
    }
)
GARM_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}
GARM_STATUS = {"Running": "running", "Stopped": "stopped", "Error": "error"}
TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
LXD_FIXTURES = TESTDATA / "lxd"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_instances", TESTDATA / "gen_instances.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_instances = _load_generator()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _nonempty(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _global_addresses(network: dict[str, Any]) -> list[str]:
    v4: list[str] = []
    v6: list[str] = []
    for nic_name, nic in network.items():
        addresses = _dict(nic).get("addresses")
        if nic_name == "lo" or not isinstance(addresses, list):
            continue
        for entry in map(_dict, addresses):
            address, family = _text(entry.get("address")), entry.get("family")
            if not address or entry.get("scope") != "global":
                continue
            is_v6 = family == "inet6" if family in ("inet", "inet6") else ":" in address
            (v6 if is_v6 else v4).append(address)
    return v4 + v6


def reference_instance(instance: dict[str, Any], state: Any) -> dict[str, Any]:
    """The documented conversion rules, written plainly."""
    config, expanded = _dict(instance.get("config")), _dict(instance.get("expanded_config"))

    def tag(key: str) -> str | None:
        return _nonempty(config.get(key)) or _nonempty(expanded.get(key))

    name = _text(instance.get("name")) or ""
    image_os = tag("image.os") or ""
    if image_os.lower() == "windows":
        os_type = "windows"
    elif image_os.lower() in LINUX_DISTROS:
        os_type = "linux"
    else:
        os_type = tag("user.os-type") or "unknown"
    arch = _text(instance.get("architecture")) or ""
    state = state if isinstance(state, dict) else None
    status = (state and _nonempty(state.get("status"))) or _nonempty(instance.get("status"))
    addresses = _global_addresses(_dict(state.get("network"))) if state else []
    return {
        "provider_id": name,
        "name": name,
        "os_type": os_type,
        "os_name": image_os,
        "os_version": tag("image.release") or "",
        "os_arch": tag("user.os-arch") or GARM_ARCH.get(arch, arch),
        "addresses": [{"address": a, "type": "public"} for a in addresses],
        "status": GARM_STATUS.get(status or "", "unknown"),
    }


def reference_instances(body: bytes, controller_id: str, pool_id: str | None) -> list[Any]:
    """The documented listing rules over json.loads."""
    selected = []
    for instance in json.loads(body)["metadata"]:
        if not isinstance(instance, dict) or not _nonempty(instance.get("name")):
            continue
        config, expanded = _dict(instance.get("config")), _dict(instance.get("expanded_config"))

        def tag(key: str, c: dict[str, Any] = config, e: dict[str, Any] = expanded) -> Any:
            return _nonempty(c.get(key)) or _nonempty(e.get(key))

        if tag("user.runner-controller-id") != controller_id:
            continue
        if pool_id is not None and tag("user.runner-pool-id") != pool_id:
            continue
        selected.append(reference_instance(instance, instance.get("state")))
    return selected


def assert_listing_matches(body: bytes, controller_id: str, pool_id: str | None) -> list[Any]:
    """Convert with the extension, compare with the reference, return the result."""
    converted = json.loads(provider_instances(body, controller_id, pool_id))
    assert converted == reference_instances(body, controller_id, pool_id)
    return converted  # type: ignore[no-any-return]


@pytest.mark.parametrize("recursion", [1, 2])
def test_generated_listing_matches_reference(recursion: int) -> None:
    body = json.dumps(gen_instances.generate(600, recursion=recursion, seed=7)).encode()
    pools_a, pools_b = (gen_instances.POOLS[c] for c in gen_instances.CONTROLLERS)
    results = {
        (controller, pool): assert_listing_matches(body, controller, pool)
        for controller, pool in [
            (gen_instances.CONTROLLER_A, None),
            (gen_instances.CONTROLLER_A, pools_a[0]),
            (gen_instances.CONTROLLER_B, None),
            (gen_instances.CONTROLLER_B, pools_b[1]),
            ("no-such-controller", None),
        ]
    }
    everything_a = results[(gen_instances.CONTROLLER_A, None)]
    assert len(everything_a) > len(results[(gen_instances.CONTROLLER_A, pools_a[0])]) > 0
    assert results[("no-such-controller", None)] == []
    statuses = {i["status"] for i in everything_a}
    assert statuses == {"running", "stopped", "error", "unknown"}
    with_addresses = [i for i in everything_a if i["addresses"]]
    assert bool(with_addresses) == (recursion == 2)
    assert all(i["status"] == "running" for i in with_addresses)


@pytest.mark.parametrize("name", ["instances-recursion1.json", "instances-recursion2.json"])
def test_fixture_listings_match_reference(name: str) -> None:
    body = (LXD_FIXTURES / name).read_bytes()
    controllers = {
        i["config"].get("user.runner-controller-id") for i in json.loads(body)["metadata"]
    }
    for controller in controllers - {None}:
        assert assert_listing_matches(body, controller, None)


@pytest.mark.parametrize(
    "state", [None, "instance-state-running.json", "instance-state-stopped.json"]
)
def test_fixture_instance_matches_reference(state: str | None) -> None:
    instance = (LXD_FIXTURES / "instance.json").read_bytes()
    state_body = (LXD_FIXTURES / state).read_bytes() if state else None
    expected = reference_instance(
        json.loads(instance)["metadata"], json.loads(state_body)["metadata"] if state_body else None
    )
    assert json.loads(provider_instance(instance, state_body)) == expected
    assert expected["name"] == "garm-fixture-1"


@pytest.mark.parametrize("query", ["recursion=2", "recursion=1&all-projects=true"])
def test_real_lxd_listing_matches_reference(transport: LxdTransport, query: str) -> None:
    status, body = transport.request("GET", f"/1.0/instances?{query}")
    assert status == 200
    instances = json.loads(body)["metadata"]
    tags = {_dict(i.get("config")).get("user.runner-controller-id") for i in instances}
    for controller in {t for t in tags if isinstance(t, str)} | {"no-such-controller"}:
        assert_listing_matches(body, controller, None)


def test_real_lxd_instance_matches_reference(transport: LxdTransport) -> None:
    names = json.loads(transport.request("GET", "/1.0/instances")[1])["metadata"]
    for url in names[:5]:
        name = url.rsplit("/", 1)[-1]
        status, one = transport.request("GET", f"/1.0/instances/{name}")
        status_state, state = transport.request("GET", f"/1.0/instances/{name}/state")
        if status != 200 or status_state != 200:
            continue  # deleted meanwhile by another test
        expected = reference_instance(json.loads(one)["metadata"], json.loads(state)["metadata"])
        assert json.loads(provider_instance(one, state)) == expected


ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The expected kind of value, or any other JSON value."""
    return st.one_of(strategy, ODD)


def optional_fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object with any subset of the given fields."""
    return st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in fields.items()})


ADDRESS = optional_fields(
    family=st.sampled_from(["inet", "inet6", "x"]),
    address=st.sampled_from(["10.0.0.1", "10.0.0.2", "fd42::1", "fe80::1", "", "é"]),
    scope=st.sampled_from(["global", "link", "local"]),
)
NETWORK = st.dictionaries(
    st.sampled_from(["eth0", "eth1", "lo", "enp5s0"]),
    maybe(optional_fields(addresses=st.lists(maybe(ADDRESS), max_size=4))),
    max_size=3,
)
STATUS = st.sampled_from(["Running", "Stopped", "Error", "Frozen", ""])
CONFIG = st.dictionaries(
    st.sampled_from(
        [
            "user.runner-controller-id",
            "user.runner-pool-id",
            "image.os",
            "image.release",
            "user.os-type",
            "user.os-arch",
            "volatile.uuid",
        ]
    ),
    maybe(st.sampled_from(["c1", "p1", "", "Ubuntu", "windows", "plan9", "jammy", "arm64"])),
    max_size=7,
)
INSTANCE = optional_fields(
    name=st.text(max_size=6),
    status=STATUS,
    architecture=st.sampled_from(["x86_64", "aarch64", "armv7l", "s390x", ""]),
    config=CONFIG,
    expanded_config=CONFIG,
    state=optional_fields(status=STATUS, network=NETWORK),
)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.lists(maybe(INSTANCE), max_size=6), st.sampled_from([None, "p1", ""]))
def test_odd_listings_match_reference(instances: list[Any], pool_id: str | None) -> None:
    body = json.dumps({"type": "sync", "metadata": instances}).encode()
    assert_listing_matches(body, "c1", pool_id)


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(INSTANCE, st.one_of(st.none(), optional_fields(status=STATUS, network=NETWORK)))
def test_odd_instance_matches_reference(instance: dict[str, Any], state: Any) -> None:
    state_body = None if state is None else json.dumps({"metadata": state}).encode()
    converted = json.loads(
        provider_instance(json.dumps({"metadata": instance}).encode(), state_body)
    )
    embedded = instance.get("state") if state is None else state
    assert converted == reference_instance(instance, embedded)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "the instance list is not an LXD response"),
        (b"[]", "the instance list is not an LXD response: invalid type: sequence"),
        (b'{"metadata": {}}', "invalid type: map"),
        (b'{"type": "sync", "metadata": null}', "the instance list has no metadata"),
        ((LXD_FIXTURES / "error-404.json").read_bytes(), "LXD error response: Instance not found"),
    ],
)
def test_bad_listing_envelope_is_a_value_error(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        provider_instances(body, "c1", None)


def test_bad_instance_envelopes_are_value_errors() -> None:
    instance = (LXD_FIXTURES / "instance.json").read_bytes()
    with pytest.raises(ValueError, match="the instance is not an LXD response"):
        provider_instance(b'{"metadata": []}', None)
    with pytest.raises(ValueError, match="the instance state is an LXD error response"):
        provider_instance(instance, (LXD_FIXTURES / "error-404.json").read_bytes())
