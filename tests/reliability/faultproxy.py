"""A unix-socket HTTP proxy in front of the real LXD socket that injects faults per request.

Requests are matched against rules (method and a regular expression searched in the path with
its query); the first armed rule decides what happens to the request. Unmatched requests are
forwarded to the real daemon unchanged, one upstream connection per request, so keep-alive and
chunking between the provider and the proxy are the proxy's own business.
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import json
import os
import re
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

# LXD answers a long-poll within its timeout (a minute at most); this bounds a wedged upstream.
UPSTREAM_TIMEOUT = 180.0
# What LXD answers for a failed request, and for a wait on an operation that is still running.
ERROR_BODY = {"type": "error", "error_code": 500, "error": "injected fault: internal server error"}
RUNNING_OPERATION = {
    "type": "sync",
    "status_code": 200,
    "metadata": {"class": "task", "status": "Running", "status_code": 103, "err": ""},
}


class Fault(enum.Enum):
    """What the proxy does with a matching request."""

    HANG = "hang"  # never forwarded, never answered
    ERROR_500 = "error-500"  # answered with HTTP 500 and an LXD error envelope
    INVALID_JSON = "invalid-json"  # answered with HTTP 200 and a body that is not JSON
    TRUNCATE = "truncate"  # forwarded; the answer is cut in half and the connection closed
    CLOSE = "close"  # the connection is closed without an answer
    FAIL_OPERATION = "fail-operation"  # forwarded; the operation in the answer reads as failed
    STALL_OPERATION = "stall-operation"  # a wait that answers at its timeout: still running
    DROP_ANSWER = "drop-answer"  # forwarded; the connection is closed instead of answering
    HOLD = "hold"  # forwarded; the answer is withheld until the rule is released
    HOLD_REQUEST = "hold-request"  # forwarded (and answered) only once the rule is released
    GO_DOWN = "go-down"  # forwarded; then, unanswered, every connection is cut and new ones refused


@dataclass
class Rule:
    """One fault for the requests that match method and path."""

    fault: Fault
    method: str = "*"
    path: str = ""
    skip: int = 0
    times: int = -1
    seen: int = 0
    fired: int = 0
    hit: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    answered: threading.Event = field(default_factory=threading.Event)  # the daemon answered

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with this method and path is one this rule is about."""
        return self.method in ("*", method) and re.search(self.path, path) is not None


class _UnixHTTPConnection(http.client.HTTPConnection):
    """An http.client connection to a unix socket."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("lxd", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        """Open the unix socket instead of a TCP connection."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path: str, proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(path, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: request bodies carry user data."""

    def setup(self) -> None:
        """Register the connection so that going down can cut it."""
        super().setup()
        self.server.proxy.track(self.connection, add=True)

    def finish(self) -> None:
        """Unregister the connection."""
        self.server.proxy.track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def handle_request(self) -> None:
        """Apply the matching rule to one request."""
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if proxy.down.is_set():
            self.close_connection = True
            return
        rule = proxy.match(self.command, self.path)
        fault = rule.fault if rule else None
        if rule is not None and fault in (Fault.HANG, Fault.CLOSE):
            rule.hit.set()
            if fault is Fault.HANG:
                proxy.stopping.wait()
            self.close_connection = True
            return
        if rule is not None and fault in (Fault.ERROR_500, Fault.INVALID_JSON):
            rule.hit.set()
            if fault is Fault.ERROR_500:
                self.answer(500, json.dumps(ERROR_BODY).encode())
            else:
                self.answer(200, b"<html><body>not what LXD sends</body>")
            return
        if rule is not None and fault is Fault.STALL_OPERATION:
            rule.hit.set()
            proxy.stopping.wait(_wait_timeout(self.path))
            self.answer(200, json.dumps(RUNNING_OPERATION).encode())
            return
        if rule is not None and fault is Fault.HOLD_REQUEST:
            # A request its sender already wrote out (it may have died since) that the daemon
            # has not yet read: the daemon acts on it only once the rule is released.
            rule.hit.set()
            while not (rule.release.wait(0.05) or proxy.stopping.is_set()):
                pass
            if proxy.stopping.is_set():
                self.close_connection = True
                return
        try:
            status, data = proxy.forward(self.command, self.path, body)
        except OSError:
            self.close_connection = True
            return
        if rule is not None:
            rule.hit.set()
            rule.answered.set()
        if fault in (Fault.DROP_ANSWER, Fault.GO_DOWN):
            self.close_connection = True
            if fault is Fault.GO_DOWN:
                proxy.go_down()
            return
        if fault is Fault.TRUNCATE:
            self.answer(status, data, cut=max(1, len(data) // 2))
            return
        if fault is Fault.FAIL_OPERATION:
            data = failed_operation(data)
        if rule is not None and fault is Fault.HOLD:
            while not (rule.release.wait(0.05) or proxy.stopping.is_set()):
                pass
        self.answer(status, data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_request

    def answer(self, status: int, data: bytes, *, cut: int = -1) -> None:
        """Send a JSON response; with cut >= 0 send only that many body bytes, then close."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data if cut < 0 else data[:cut])
        except OSError:
            self.close_connection = True
            return
        if cut >= 0:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


def _wait_timeout(path: str) -> float:
    """The timeout=N of an operation wait request (LXD waits that long at most), capped."""
    found = re.search(r"[?&]timeout=(\d+)", path)
    return min(float(found.group(1)), 60.0) if found else 1.0


def failed_operation(data: bytes) -> bytes:
    """Rewrite an LXD operation envelope so that the operation reads as failed."""
    try:
        envelope = json.loads(data)
    except ValueError:
        return data
    meta = envelope.get("metadata") if isinstance(envelope, dict) else None
    if not isinstance(meta, dict) or "status_code" not in meta:
        return data
    meta.update(status="Failure", status_code=400, err="injected fault: operation failed")
    return json.dumps(envelope).encode()


class FaultProxy:
    """The proxy: listen on path, forward to upstream, inject the faults of its rules."""

    def __init__(self, upstream: str, path: str) -> None:
        self.upstream = upstream
        self.path = path
        self.rules: list[Rule] = []
        self.requests: list[tuple[str, str]] = []
        self.stopping = threading.Event()
        self.down = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None

    def __enter__(self) -> FaultProxy:
        self.listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(
        self, fault: Fault, method: str = "*", path: str = "", *, skip: int = 0, times: int = -1
    ) -> Rule:
        """Add a rule: fault for matching requests after the first skip, at most times times."""
        rule = Rule(fault, method, path, skip=skip, times=times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule (held answers are released) and come back up if down."""
        with self._lock:
            rules, self.rules = self.rules, []
        for rule in rules:
            rule.release.set()
        if self.down.is_set():
            self.listen()

    def match(self, method: str, path: str) -> Rule | None:
        """Record the request and return the armed rule that applies to it, if any."""
        with self._lock:
            self.requests.append((method, path))
            for rule in self.rules:
                if not rule.matches(method, path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip or rule.fired == rule.times:
                    continue
                rule.fired += 1
                return rule
        return None

    def forward(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """Send the request to the real daemon and return its status and whole body."""
        conn = _UnixHTTPConnection(self.upstream, UPSTREAM_TIMEOUT)
        headers = {"User-Agent": "garm-reliability-faultproxy"}
        if body or method in ("POST", "PUT", "PATCH"):
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except http.client.HTTPException as exc:
            raise OSError(f"upstream: {exc}") from None
        finally:
            conn.close()

    def track(self, conn: socket.socket, *, add: bool) -> None:
        """Remember (or forget) an open client connection."""
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def listen(self) -> None:
        """Start (or restart) listening on the proxy socket."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.down.clear()
        self._server = _Server(self.path, self)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def go_down(self) -> None:
        """Act as a daemon that died: cut every connection, refuse new ones (socket file stays)."""
        self.down.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop everything and remove the socket file."""
        self.stopping.set()
        self.go_down()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
