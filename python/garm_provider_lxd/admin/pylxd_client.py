"""A pylxd Client built from the provider Config, for operator commands (never GARM's path)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, LxdConnectionError, LxdError
from ..files import read_pem
from ..messages import error_line

if TYPE_CHECKING:
    import pylxd

    from ..config import Config

# Room for the answer to an operation wait that LXD itself ends when its timeout is up.
WAIT_SLACK_SECONDS = 5.0


def connect(config: Config, *, trusted_only: bool = True) -> pylxd.Client:
    """Connect to the config's server (unix socket or HTTPS) and project with pylxd.

    trusted_only=False returns a client the server does not trust (it sees public images only)
    instead of raising, for callers that report that themselves.
    """
    import pylxd
    from pylxd.exceptions import ClientConnectionFailed, LXDAPIException

    project = config.project_name or None
    # pylxd waits for operations (create, publish) with one plain request: give it the
    # operation deadline, not the per-request one.
    timeout = max(config.request_timeout_seconds, config.operation_timeout_seconds) or 600.0
    where = config.unix_socket_path or config.url
    try:
        if config.unix_socket_path:
            # pylxd takes a path that does not exist for an https:// host name.
            if not os.path.exists(config.unix_socket_path):
                raise LxdConnectionError(
                    f"cannot connect to {config.unix_socket_path}: no such socket"
                )
            return pylxd.Client(endpoint=config.unix_socket_path, project=project, timeout=timeout)
        cert = (_readable(config.client_certificate, "client_certificate"),
                _readable(config.client_key, "client_key"))  # fmt: skip
        if config.tls_server_certificate:
            session = pinned_session(config.tls_server_certificate, cert)
        else:
            session = ca_session(
                _readable(config.tls_ca, "tls_ca") if config.tls_ca else True, cert
            )
        client = pylxd.Client(
            endpoint=config.url, session=session, project=project, timeout=timeout
        )
    except (ClientConnectionFailed, LXDAPIException, OSError) as exc:
        raise LxdConnectionError(f"cannot connect to {where}: {error_line(exc, 300)}") from None
    # An untrusted client still gets answers (public images only), so say it here.
    if trusted_only and client.host_info.get("auth") != "trusted":
        raise LxdConnectionError(
            f"{where} does not trust the client certificate {config.client_certificate}"
        )
    return client


def api_node(client: pylxd.Client, *segments: str) -> Any:
    """pylxd's API node for /1.0/<segments...>, each segment percent-encoded (pylxd does not)."""
    from ..lxd import quote

    node = client.api
    for segment in segments:
        node = node[quote(segment, safe="")]
    return node


def metadata(response: Any) -> Any:
    """The metadata of an LXD response pylxd returned."""
    return response.json().get("metadata")


@contextmanager
def lxd_errors(what: str) -> Iterator[None]:
    """Turn pylxd's and requests' exceptions into the provider's one-line LxdError."""
    from pylxd.exceptions import LXDAPIException
    from requests import RequestException

    try:
        yield
    except LXDAPIException as exc:
        raise LxdError(f"{what}: {error_line(exc, 400)}") from None
    except RequestException as exc:
        raise LxdError(f"{what}: request to LXD failed: {error_line(exc, 400)}") from None


def pinned_session(server_cert_path: str, cert: tuple[str, str]) -> Any:
    """A requests Session that accepts exactly one server certificate (the Go client's pinning).

    The pinned certificate is compared byte for byte (by SHA-256), without a CA chain or a host
    name check, as the provider's own transport does.
    """
    import ssl

    import requests
    from requests.adapters import HTTPAdapter

    pem = read_pem(server_cert_path, "tls_server_certificate")
    try:
        der = ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ConfigError(
            f"config: tls_server_certificate: {server_cert_path} is not a PEM certificate"
        ) from None
    fingerprint = hashlib.sha256(der).hexdigest()

    class PinnedAdapter(HTTPAdapter):
        # requests builds the pool from `verify`, then calls cert_verify on it before any
        # connection is made: the pool skips the CA check and asserts the fingerprint instead.
        def get_connection_with_tls_context(
            self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
        ) -> Any:
            return super().get_connection_with_tls_context(request, False, proxies, cert)

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn, url, False, cert)
            conn.assert_fingerprint = fingerprint

    session = requests.Session()
    session.cert = cert
    session.mount("https://", PinnedAdapter())
    return session


def ca_session(verify: bool | str, cert: tuple[str, str]) -> Any:
    """A requests Session that checks the server against a CA file (or the system store).

    Not pylxd's own `verify=<path>`: pylxd treats that file as a pinned certificate.
    """
    import requests

    session = requests.Session()
    session.cert = cert
    session.verify = verify
    return session


def _readable(path: str, key: str) -> str:
    """path, once it has passed the rule requests will read it under (it opens the path)."""
    read_pem(path, key)
    return path


def project_api(client: pylxd.Client, project: str) -> Any:
    """client's raw API root (`client.api`), sending every request to project instead."""
    api = client.api
    # The API node adds its project to every request's query: a node per project is the way
    # pylxd has to reach several projects over one connection pool.
    return type(api)(api._api_endpoint, api.session, timeout=api._timeout, project=project or None)


def wait_for_operation(
    client: pylxd.Client, response: Any, timeout: float | None = None
) -> dict[str, Any]:
    """Wait for the operation an async response started; its metadata ({} for a sync one).

    pylxd raises if the operation failed. With a timeout (seconds), LXD ends the wait when it is
    up, and an operation that has not succeeded by then is an LxdError with LXD's reason.
    """
    envelope = response.json()
    operation = str(envelope.get("operation") or "")
    if envelope.get("type") != "async" or not operation:
        return {}
    if timeout is None:
        return dict(client.operations.wait_for_operation(operation).metadata or {})
    outcome = wait_for_operation_id(client, operation.rstrip("/").rsplit("/", 1)[-1], timeout)
    if outcome.get("status") != "Success":
        raise LxdError(str(outcome.get("err") or f"operation {outcome.get('status', 'unknown')}"))
    return dict(outcome.get("metadata") or {})


def wait_for_operation_id(
    client: pylxd.Client, operation_id: str, timeout: float
) -> dict[str, Any]:
    """The operation operation_id as LXD answers after waiting up to timeout seconds for it."""
    node = api_node(client, "operations", operation_id, "wait")
    answer = node.get(params={"timeout": str(int(timeout))}, timeout=timeout + WAIT_SLACK_SECONDS)
    return dict(metadata(answer) or {})
