"""Rust extension: LXD transport, instance lists, cloud-config assembly, JSON and TOML."""

from typing import Any, final

from typing_extensions import Self

__all__ = [
    "LINUX_DISTROS",
    "LxdTransport",
    "b64encode",
    "cloud_config",
    "json_dumps",
    "json_loads",
    "provider_instance",
    "provider_instances",
    "state_ipv4",
    "toml_loads",
]

@final
class LxdTransport:
    """HTTP/1.1 client for the LXD REST API over a unix socket or HTTPS; thread-safe.

    Connection failures (socket missing, refused, TLS errors) raise LxdConnectionError, an
    expired deadline raises LxdTimeoutError, and bad arguments (PEM, URL, timeout) ValueError.
    """

    def __new__(
        cls,
        *,
        unix_socket: str | None = None,
        url: str | None = None,
        client_cert: bytes | None = None,
        client_key: bytes | None = None,
        server_cert: bytes | None = None,
        ca_cert: bytes | None = None,
        timeout: float = 30.0,
    ) -> Self:
        """Describe the endpoint; connects lazily on the first request.

        Exactly one of `unix_socket` and `url` (https only). For HTTPS, `server_cert` pins the
        server's certificate exactly; otherwise `ca_cert`, else the system trust store, must
        verify it, host name included. `timeout` is the default deadline in seconds.
        """

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
    ) -> tuple[int, bytes]:
        """Send one request (path includes the query) and return (status, body bytes).

        With `max_bytes`, at most that many bytes of the body are kept and the rest is never
        read (for bodies the other end controls, such as files inside an instance).

        The deadline covers connecting, sending and reading the whole body. The GIL is released
        while waiting; one idle keep-alive connection is reused between calls.
        """

    def read_file_tail(
        self,
        path: str,
        file: str,
        max_bytes: int,
        timeout: float | None = None,
        lstat_first: bool = True,
    ) -> tuple[str | None, bytes, int]:
        """Read the last `max_bytes` of the regular file `file` of an instance over SFTP.

        `path` is the instance's SFTP endpoint (`/1.0/instances/<name>/sftp`, query included),
        upgraded on a connection of its own. Returns (type, data, size): type is None when
        nothing is at `file`, else "a regular file", "a FIFO", "a symbolic link", ... (links
        not followed); what is not a regular file is never opened and its data is empty. A
        regular file is opened read-write (a FIFO swapped in after the lstat opens at once; the
        open handle's fstat turns it away), never written; size is its size when opened.
        `lstat_first=False` skips the lstat (tests stand for such a swap with it). The deadline
        covers the whole exchange; failures raise LxdError, LxdTimeoutError or
        LxdConnectionError.
        """

LINUX_DISTROS: tuple[str, ...]
"""`image.os` values (lowercased) that make an instance's os_type linux."""

def provider_instances(body: bytes, controller_id: str, pool_id: str | None) -> bytes:
    """Convert a GET /1.0/instances?recursion=1|2 response into a ProviderInstance JSON array.

    Keeps the instances tagged with `controller_id` and, unless `pool_id` is None, `pool_id`.
    Raises LxdError when the body is not a sync LXD response with a metadata list.
    """

def provider_instance(instance: bytes, state: bytes | None) -> bytes:
    """Convert GET /1.0/instances/<name> (+ optional /state) into ProviderInstance JSON."""

def state_ipv4(state: bytes) -> list[str]:
    """The global IPv4 addresses of an instance state object (not an envelope), but `lo`'s.

    Raises LxdError when the bytes are not JSON.
    """

def cloud_config(spec: bytes) -> bytes:
    """Render a #cloud-config document from its JSON description (see rust/src/cloudinit.rs)."""

def b64encode(data: bytes) -> str:
    """Encode bytes as standard, padded base64."""

def json_loads(data: bytes) -> Any:
    """Parse JSON bytes into plain Python objects; raises ValueError on invalid JSON."""

def json_dumps(value: object) -> bytes:
    """Serialize a value as compact JSON bytes, keeping dict order; TypeError if not JSON."""

def toml_loads(text: str) -> dict[str, Any]:
    """Parse a TOML document (date/times as str); raises ValueError with line and column."""
