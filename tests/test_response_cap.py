"""The cap on LXD response bodies (rust/src/client.rs MAX_BODY_BYTES), seen by GARM's commands.

The listings here come from a small unix-socket server in front of nothing: GET /1.0 answers with
the real daemon's server info, GET /1.0/instances with a body the test builds. The real daemon
could produce the 5,000-instance listing too, but filling it takes about 15 minutes on this
machine and 5,000 more instances slow every other test's creates on the shared daemon (LXD 5.0
checks a new NIC against every instance); and no real daemon sends an endless body. The
5,000 entries are copies of an instance the real daemon returns for a real CreateInstance (the
provider's default user data), so their shape and size are real.
"""

from __future__ import annotations

import contextlib
import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from adversarial_corpus import Case, load_cases
from conftest import RunProvider, create_runner, socket_config

from garm_provider_lxd._native import LxdTransport

CAP = 256 << 20  # MAX_BODY_BYTES in rust/src/client.rs
LISTED = 5000
CHUNK = 1 << 20


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, server_info: bytes, listing: Callable[[Any], None]) -> None:
        self.path = path
        self.server_info = server_info
        self.listing = listing
        self.sent = 0
        super().__init__(path, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""

    def do_GET(self) -> None:
        """GET /1.0 from the real daemon; the listing from the test."""
        if self.path.split("?")[0] == "/1.0":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.server.server_info)))
            self.end_headers()
            self.wfile.write(self.server.server_info)
        else:
            with contextlib.suppress(OSError):
                self.server.listing(self)


@contextlib.contextmanager
def serving(
    tmp_path: Path, transport: LxdTransport, listing: Callable[[Any], None]
) -> Iterator[_Server]:
    """Serve on a unix socket in tmp_path (the daemon's server info, the given listing)."""
    _, server_info = transport.request("GET", "/1.0")
    server = _Server(str(tmp_path / "lxd.socket"), server_info, listing)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _list(run_provider: RunProvider, config: Path, controller_id: str, pool_id: str) -> Any:
    return run_provider(
        "ListInstances",
        config=config,
        controller_id=controller_id,
        pool_id=pool_id,
        interface_version="v0.1.0",
        timeout=300,
    )


def test_a_listing_of_5000_real_instances_is_read(
    run_provider: RunProvider,
    provider_config: Path,
    transport: LxdTransport,
    controller_id: str,
    tmp_path: Path,
) -> None:
    proc, name, boot = create_runner(run_provider, provider_config, controller_id)
    assert proc.returncode == 0, proc.stderr
    status, raw = transport.request("GET", f"/1.0/instances/{name}")
    assert status == 200
    instance = json.loads(raw)["metadata"]
    items = [{**instance, "name": f"{name}-{i}"} for i in range(LISTED)]
    body = json.dumps({"type": "sync", "status_code": 200, "metadata": items}).encode()
    # About 23 KB an instance (the user data twice: config and expanded_config), as measured
    # on a real 5,000-instance listing: the size the cap was chosen for.
    assert 100 << 20 < len(body) < CAP // 2

    def answer(handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with serving(tmp_path, transport, answer) as server:
        config = socket_config(tmp_path / "served.toml", server.path)
        listed = _list(run_provider, config, controller_id, boot["pool_id"])
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == LISTED


TRANSPORT_CASES = load_cases(via="transport")
# What a server sends at most of a body it declares with Content-Length: a provider that waited
# for the rest would wait until its request timeout.
DECLARED_SENT = 1 << 20


def _past_the_cap(case: Case) -> Callable[[Any], None]:
    """The listing a corpus case describes: chunked up to body_bytes, or a Content-Length of
    body_bytes with at most DECLARED_SENT of it sent."""
    size = case.spec["body_bytes"]

    def answer(handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if case.spec["framing"] == "length":
            handler.send_header("Content-Length", str(size))
            handler.end_headers()
            handler.wfile.write(b" " * min(size, DECLARED_SENT))
            handler.server.sent += min(size, DECLARED_SENT)
            return
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
        while handler.server.sent < size:
            handler.wfile.write(chunk)
            handler.server.sent += CHUNK
        handler.wfile.write(b"0\r\n\r\n")

    return answer


@pytest.mark.parametrize("case", TRANSPORT_CASES, ids=[case.name for case in TRANSPORT_CASES])
def test_a_listing_past_the_cap_is_one_line_and_not_read(
    run_provider: RunProvider,
    transport: LxdTransport,
    controller_id: str,
    tmp_path: Path,
    case: Case,
) -> None:
    """The corpus's bodies over the cap (testdata/adversarial/transport): chunked, so the length
    is known only by reading (it ends 32 MiB past the cap, which bounds what code without a cap
    would read), or declared, so nothing need be read."""
    with serving(tmp_path, transport, _past_the_cap(case)) as server:
        config = socket_config(tmp_path / "served.toml", server.path)
        listed = _list(run_provider, config, controller_id, "")
        sent = server.sent
    assert listed.returncode == case.expect_exit
    assert listed.stdout == b""
    line = listed.stderr.decode()
    assert line.count("\n") == 1, line
    assert line.endswith(
        f"LXD response to GET /1.0/instances from {server.path} {case.expect_stderr}\n"
    ), line
    # The provider hung up near the cap instead of reading the rest.
    assert sent < CAP + (16 << 20)
