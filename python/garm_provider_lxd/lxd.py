"""The one module that talks to LXD on the GARM command path (through the Rust transport)."""

from __future__ import annotations

import time

from ._native import json_dumps, json_loads
from .errors import (
    ConfigError,
    DuplicateError,
    LxdConnectionError,
    LxdError,
    LxdTimeoutError,
    NotFoundError,
    ProviderError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from .config import Config

    Result = TypeVar("Result")

# LXD status codes of operations (shared/api/status_code.go).
_OPERATION_SUCCESS = 200
_OPERATION_FAILURE = 400
_OPERATION_CANCELLED = 401
_OPERATION_ENDED = (_OPERATION_SUCCESS, _OPERATION_FAILURE, _OPERATION_CANCELLED)
# What Lxd.read_file_tail calls a regular file (every other type is reported, never read).
REGULAR_FILE = "a regular file"


class LxdTimes:
    """What this process spent waiting on LXD: requests, and the part of it on operations."""

    requests = 0
    seconds = 0.0
    operation_seconds = 0.0


def _counted(send: Callable[[], Result]) -> Result:
    """Run one exchange with LXD, adding it and its wall time to LxdTimes (the command record)."""
    began = time.monotonic()
    try:
        return send()
    finally:
        LxdTimes.requests += 1
        LxdTimes.seconds += time.monotonic() - began


class Lxd:
    """A connection to one LXD (or Incus) server and project."""

    def __init__(self, config: Config) -> None:
        from ._native import LxdTransport

        self.config = config
        self.project = config.project_name
        timeout = config.request_timeout_seconds or 45.0
        try:
            if config.unix_socket_path:
                self._transport = LxdTransport(unix_socket=config.unix_socket_path, timeout=timeout)
            else:
                from .files import read_pem

                self._transport = LxdTransport(
                    url=config.url,
                    client_cert=read_pem(config.client_certificate, "client_certificate"),
                    client_key=read_pem(config.client_key, "client_key"),
                    server_cert=(
                        read_pem(config.tls_server_certificate, "tls_server_certificate")
                        if config.tls_server_certificate
                        else None
                    ),
                    ca_cert=read_pem(config.tls_ca, "tls_ca") if config.tls_ca else None,
                    timeout=timeout,
                )
        except ValueError as exc:  # unusable PEM data, or a key that does not match its cert
            raise ConfigError(f"config: {exc}") from None
        # GET /1.0, shared with the connections for_project() makes: read once per process.
        self._cache: dict[str, dict[str, Any]] = {}

    def for_project(self, project: str) -> Lxd:
        """Return a connection to the same server (same transport) that works in project."""
        if project == self.project:
            return self
        other = object.__new__(Lxd)
        other.__dict__.update(self.__dict__)
        other.project = project
        return other

    # -- plumbing ---------------------------------------------------------------------------

    def path(self, path: str, **query: str) -> str:
        """Return path with the project and the given query parameters appended."""
        params = dict(query)
        if self.project:
            params["project"] = self.project
        if not params:
            return path
        joined = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
        return f"{path}{'&' if '?' in path else '?'}{joined}"

    def raw(
        self, method: str, path: str, body: object = None, timeout: float | None = None
    ) -> tuple[int, bytes]:
        """Send one request; return the HTTP status and the raw response body."""
        payload = None if body is None else json_dumps(body)
        return _counted(lambda: self._transport.request(method, path, payload, timeout))

    def read_bounded(self, path: str, limit: int, timeout: float) -> tuple[int, bytes]:
        """GET path, keeping at most limit bytes of the body, within timeout seconds."""
        full = self.path(path)
        return _counted(lambda: self._transport.request("GET", full, None, timeout, limit))

    def read_file_tail(
        self, name: str, file: str, max_bytes: int, timeout: float, *, lstat_first: bool = True
    ) -> tuple[str | None, bytes, int]:
        """(type or None, last max_bytes, size) of file in instance name, over SFTP (see _native).

        Nothing but a regular file is opened; its type says what it is (REGULAR_FILE, "a FIFO").
        """
        sftp = self.path(api_path("instances", name) + "/sftp")
        transport = self._transport
        return _counted(
            lambda: transport.read_file_tail(sftp, file, max_bytes, timeout, lstat_first)
        )

    def call(
        self, method: str, path: str, body: object = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one request and return the decoded envelope, raising on LXD errors."""
        status, data = self.raw(method, path, body, timeout)
        envelope = _decode(data, method, path)
        if status >= 400 or envelope.get("type") == "error":
            raise _error_for(envelope, status, f"{method} {path.split('?')[0]}")
        return envelope

    def wait(self, envelope: dict[str, Any], what: str, timeout: float | None = None) -> None:
        """Wait for the operation an async response started; raise if it failed."""
        if envelope.get("type") != "async":
            return
        operation = envelope.get("operation")
        if not isinstance(operation, str) or not operation.startswith("/1.0/operations/"):
            raise LxdError(f"{what}: LXD returned an async response without an operation")
        budget = self.config.operation_timeout_seconds if timeout is None else timeout
        began = time.monotonic()
        try:
            self._wait(operation, what, budget, began + budget)
        finally:
            LxdTimes.operation_seconds += time.monotonic() - began

    def _wait(self, operation: str, what: str, budget: float, deadline: float) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LxdTimeoutError(f"{what}: LXD operation did not finish within {budget:g}s")
            chunk = max(1, min(int(remaining), 60))
            result = self.call(
                "GET",
                self.path(f"{operation}/wait", timeout=str(chunk)),
                timeout=chunk + (self.config.request_timeout_seconds or 45.0),
            )
            meta = result.get("metadata") or {}
            code = meta.get("status_code")
            if code == _OPERATION_SUCCESS:
                return
            if code in (_OPERATION_FAILURE, _OPERATION_CANCELLED):
                raise _error_for({"error": meta.get("err") or meta.get("status")}, 500, what)

    # -- server -----------------------------------------------------------------------------

    def server(self) -> dict[str, Any]:
        """Return GET /1.0 (read once per process)."""
        server = self._cache.get("server")
        if server is None:
            server = self._cache["server"] = (
                self.call("GET", self.path("/1.0")).get("metadata") or {}
            )
        return server

    def has_extension(self, name: str) -> bool:
        """Whether the server advertises the API extension name."""
        return name in (self.server().get("api_extensions") or ())

    # -- instances --------------------------------------------------------------------------

    def instance_path(self, name: str) -> str:
        """Return the API path of instance name."""
        return api_path("instances", name)

    def get_instance(self, name: str, *, full: bool = False) -> tuple[dict[str, Any], bytes]:
        """Return (metadata, raw envelope) of an instance; NotFoundError if absent.

        With full, servers that have `instance_get_full` embed the state (others ignore it).
        """
        query = {"recursion": "1"} if full else {}
        status, data = self.raw("GET", self.path(self.instance_path(name), **query))
        envelope = _decode(data, "GET", "instance")
        if status == 404:
            raise NotFoundError(f"instance {name} not found")
        if status >= 400:
            raise _error_for(envelope, status, f"get instance {name}")
        return envelope.get("metadata") or {}, data

    def get_state(self, name: str) -> bytes:
        """Return the raw envelope of GET /1.0/instances/<name>/state."""
        status, data = self.raw("GET", self.path(self.instance_path(name) + "/state"))
        if status == 404:
            raise NotFoundError(f"instance {name} not found")
        if status >= 400:
            raise _error_for(_decode(data, "GET", "state"), status, f"get state of {name}")
        return data

    def get_profile(self, name: str) -> dict[str, Any] | None:
        """Return a profile of this project (its config and devices), None if it does not exist.

        One GET per profile: LXD 5.0 renders every profile's used_by even for the bare profile
        list, and a profile's used_by costs LXD about 0.1 ms per instance using it.
        """
        status, data = self.raw("GET", self.path(api_path("profiles", name)))
        envelope = _decode(data, "GET", "profile")
        if status == 404:
            return None
        if status >= 400 or envelope.get("type") == "error":
            raise _error_for(envelope, status, f"get profile {name}")
        metadata = envelope.get("metadata")
        return metadata if isinstance(metadata, dict) else {}

    def create_instance(self, body: dict[str, Any], target: str = "") -> None:
        """Create an instance (and start it when the body asks) and wait for it."""
        name = str(body.get("name"))
        source = body.get("source") or {}
        image = source.get("alias") or source.get("fingerprint") or "?"
        what = f"create instance {name} from image {image}"
        query = {"target": target} if target else {}
        status, data = self.raw("POST", self.path("/1.0/instances", **query), body)
        envelope = _decode(data, "POST", "instances")
        if status == 409:
            raise DuplicateError(f"instance {name} already exists")
        try:
            if status >= 400 or envelope.get("type") == "error":
                raise _error_for(envelope, status, what)
            self.wait(envelope, what)
        except NotFoundError as exc:
            # A missing image or profile: exit code 30 means "instance not found" to GARM.
            raise LxdError(str(exc)) from None

    def change_state(self, name: str, action: str, *, force: bool = False) -> None:
        """Start or stop an instance and wait for the change."""
        envelope = self.call(
            "PUT",
            self.path(self.instance_path(name) + "/state"),
            {"action": action, "force": force, "timeout": 30},
        )
        self.wait(envelope, f"{action} instance {name}")

    def delete_instance(self, name: str, *, force: bool) -> None:
        """Delete an instance (force=true stops it first on servers that support it)."""
        query = {"force": "true"} if force else {}
        status, data = self.raw("DELETE", self.path(self.instance_path(name), **query))
        if status == 404:
            raise NotFoundError(f"instance {name} not found")
        envelope = _decode(data, "DELETE", "instance")
        if status >= 400 or envelope.get("type") == "error":
            raise _error_for(envelope, status, f"delete instance {name}")
        self.wait(envelope, f"delete instance {name}")

    def unreachable_members(self) -> list[str]:
        """The cluster members LXD marks offline (none on a server that is not clustered)."""
        if not (self.server().get("environment") or {}).get("server_clustered"):
            return []
        members = self.call("GET", "/1.0/cluster/members?recursion=1").get("metadata") or []
        return [
            str(member.get("server_name"))
            for member in members
            if isinstance(member, dict) and member.get("status") == "Offline"
        ]

    def wait_for_instance_operations(self, name: str) -> bool:
        """Wait for this project's unfinished operations on instance name; say if any was seen.

        Finished operations count as seen too: LXD lists them for a few seconds, and one that
        just ended may have created the instance a moment ago.
        """
        envelope = self.call("GET", self.path("/1.0/operations", recursion="1"))
        mine = self.instance_path(name)
        # LXD 5.0 lists "/1.0/instances/<name>"; newer servers may add "?project=<p>" (the list
        # is of this project either way).
        touching = [
            operation
            for operations in (envelope.get("metadata") or {}).values()
            for operation in operations or ()
            if any(
                str(path).split("?")[0] == mine
                for path in (operation.get("resources") or {}).get("instances") or ()
            )
        ]
        budget = self.config.operation_timeout_seconds
        deadline = time.monotonic() + budget
        for operation in touching:
            if operation.get("status_code") in _OPERATION_ENDED:
                continue
            started = {"type": "async", "operation": f"/1.0/operations/{operation.get('id')}"}
            what = f"wait for {operation.get('description')} on {name}"
            try:
                self.wait(started, what, timeout=max(0.0, deadline - time.monotonic()))
            except LxdTimeoutError:
                if time.monotonic() < deadline:
                    raise  # one request timed out, not the whole wait
                message = f"{what}: LXD operation did not finish within {budget:g}s"
                raise LxdTimeoutError(message) from None
            except LxdConnectionError:
                raise
            except (LxdError, NotFoundError):
                continue  # it failed or is gone: either way it no longer holds the instance
        return bool(touching)

    def list_instances(self, filters: dict[str, str], recursion: str) -> bytes:
        """Return the raw envelope of the instance list, filtered server-side when possible."""
        query = {"recursion": recursion}
        if filters and self.has_extension("api_filtering"):
            from .instances import listing_filter

            clause = listing_filter(filters)
            if clause:
                query["filter"] = clause
        status, data = self.raw("GET", self.path("/1.0/instances", **query))
        if status >= 400:
            raise _error_for(_decode(data, "GET", "instances"), status, "list instances")
        return data


def api_path(*segments: str) -> str:
    """Return /1.0/<segments...> with each segment percent-encoded (names may hold '/', '?')."""
    return "/1.0/" + "/".join(quote(segment, safe="") for segment in segments)


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote(text: str, safe: str = "") -> str:
    """Percent-encode text for a URL path segment or query value (urllib.parse.quote's rules).

    Written here because importing urllib.parse costs more start-up time than this function.
    """
    allowed = _UNRESERVED | frozenset(safe)
    return "".join(c if c in allowed else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def _decode(data: bytes, method: str, what: str) -> dict[str, Any]:
    try:
        envelope = json_loads(data)
    except ValueError:
        raise LxdError(f"{method} {what}: LXD returned a response that is not JSON") from None
    if not isinstance(envelope, dict):
        raise LxdError(f"{method} {what}: LXD returned an unexpected response")
    return envelope


def _error_for(envelope: dict[str, Any], status: int, what: str) -> ProviderError:
    message = str(envelope.get("error") or f"HTTP {status}").strip().splitlines()
    text = message[0] if message else f"HTTP {status}"
    if status == 404 or envelope.get("error_code") == 404:
        return NotFoundError(f"{what}: {text}")
    return LxdError(f"{what}: LXD: {text}")
