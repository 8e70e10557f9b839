"""The native LXD transport over the unix socket: requests, errors, deadlines, threads."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from garm_provider_lxd._native import LxdTransport
from garm_provider_lxd.errors import LxdConnectionError, LxdTimeoutError


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
