"""A minimal LXD REST client over the unix socket, used by the benchmarks for setup and floors."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import struct
import time
from typing import Any
from urllib.parse import quote

DEFAULT_SOCKET = "/var/lib/garm-provider-lxd-test/lxd/unix.socket"
RETRIES = 4


class LxdApiError(RuntimeError):
    """LXD answered with an error (status and message attached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    """HTTPConnection that connects to a unix socket instead of TCP."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("lxd", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        """Open the unix socket."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class Lxd:
    """One keep-alive connection to LXD; not thread-safe (use one per thread)."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = 600.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._conn: _UnixConnection | None = None

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        """Send one request and return (HTTP status, raw body); reconnects once if needed."""
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = _UnixConnection(self.socket_path, self.timeout)
            try:
                self._conn.request(method, path, payload, headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        """Send one request; return the decoded envelope or raise LxdApiError."""
        status, data = self.request(method, path, body)
        envelope: dict[str, Any] = json.loads(data)
        if status >= 400 or envelope.get("type") == "error":
            raise LxdApiError(status, str(envelope.get("error")))
        return envelope

    def wait(self, envelope: dict[str, Any], timeout: int = 600) -> dict[str, Any]:
        """Wait for the operation an async envelope started; raise if it failed."""
        if envelope.get("type") != "async":
            return envelope
        result = self.call("GET", f"{envelope['operation']}/wait?timeout={timeout}")
        meta = result.get("metadata") or {}
        if meta.get("status_code") != 200:
            raise LxdApiError(500, str(meta.get("err") or meta.get("status")))
        return result

    def run(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        """Send one request and wait for its operation; retry database timeouts of a busy LXD."""
        for attempt in range(RETRIES):
            try:
                return self.wait(self.call(method, path, body))
            except LxdApiError as exc:
                # What failed on "Failed to begin transaction" was rolled back by LXD.
                if "transaction" not in str(exc) or attempt == RETRIES - 1:
                    raise
                time.sleep(1 + attempt)
        raise AssertionError("unreachable")


def with_project(path: str, project: str, **query: str) -> str:
    """Return path with the project and query parameters appended."""
    params = dict(query)
    if project and project != "default":
        params["project"] = project
    if not params:
        return path
    joined = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return f"{path}{'&' if '?' in path else '?'}{joined}"


def instance_path(name: str, project: str, suffix: str = "", **query: str) -> str:
    """Return the API path of one instance (plus suffix) in project."""
    return with_project(f"/1.0/instances/{quote(name, safe='')}{suffix}", project, **query)


def ensure_project(lxd: Lxd, project: str) -> None:
    """Create project sharing the default project's images and profiles, if missing."""
    status, _ = lxd.request("GET", f"/1.0/projects/{quote(project, safe='')}")
    if status == 200:
        return
    config = {"features.images": "false", "features.profiles": "false"}
    lxd.call("POST", "/1.0/projects", {"name": project, "config": config})


def instance_names(lxd: Lxd, project: str) -> list[str]:
    """Return the names of every instance in project."""
    urls = lxd.call("GET", with_project("/1.0/instances", project))["metadata"] or []
    return [url.rsplit("/", 1)[-1].split("?", 1)[0] for url in urls]


def force_delete(lxd: Lxd, name: str, project: str, *, running: bool = True) -> None:
    """Stop (unless known to be stopped) and delete an instance; a missing one is fine."""
    if running:
        status, data = lxd.request(
            "PUT", instance_path(name, project, "/state"), {"action": "stop", "force": True}
        )
        if status == 404:
            return
        envelope = json.loads(data)
        if status < 400 and envelope.get("type") == "async":
            with contextlib.suppress(LxdApiError):  # it stopped on its own meanwhile
                lxd.wait(envelope)
    try:
        lxd.run("DELETE", instance_path(name, project))
    except LxdApiError as exc:
        if exc.status != 404:
            raise


def wait_for_ipv4(lxd: Lxd, name: str, project: str, timeout: float = 30.0) -> str:
    """Poll the instance state until it has an IPv4 address on eth0; return it or ''."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = lxd.call("GET", instance_path(name, project, "/state"))["metadata"] or {}
        for nic, info in (state.get("network") or {}).items():
            if nic == "lo":
                continue
            for address in info.get("addresses") or []:
                if address.get("family") == "inet":
                    return str(address["address"])
        time.sleep(0.1)
    return ""


def daemon_fds(socket_path: str = DEFAULT_SOCKET) -> tuple[int, int] | None:
    """Return (open file descriptors, soft limit) of the LXD daemon behind the socket."""
    # LXD 5.0 keeps each instance's lxc.log open once a listing has loaded it, and leaks that
    # descriptor when the instance is deleted: thousands of instances need headroom.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid = struct.unpack("3i", creds)[0]
        count = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/limits") as handle:
            for line in handle:
                if line.startswith("Max open files"):
                    return count, int(line.split()[3])
    except OSError:
        return None
    finally:
        sock.close()
    return None


def storage_profile(lxd: Lxd, driver: str, size: str = "30GiB") -> str:
    """Return a runner profile with its root disk on a loop-backed pool of driver, made if missing.

    The profile is the `default` profile with the root disk moved, used instead of it (as a
    pool's flavor is); "dir" returns "" (the default profile's pool here is `dir`).
    """
    if driver == "dir":
        return ""
    name = f"bench-{driver}"
    if lxd.request("GET", f"/1.0/storage-pools/{name}")[0] == 404:
        lxd.run(
            "POST", "/1.0/storage-pools", {"name": name, "driver": driver, "config": {"size": size}}
        )
    if lxd.request("GET", f"/1.0/profiles/{name}")[0] == 404:
        devices = lxd.call("GET", "/1.0/profiles/default")["metadata"]["devices"]
        devices["root"] = {"type": "disk", "path": "/", "pool": name}
        lxd.call("POST", "/1.0/profiles", {"name": name, "devices": devices})
    return name
