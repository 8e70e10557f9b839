"""Rust extension: LXD transport, instance-list conversion and cloud-config assembly."""

class LxdTransport:
    """HTTP/1.1 client for the LXD REST API over a unix socket or HTTPS; thread-safe."""

    def __init__(
        self,
        *,
        unix_socket: str | None = None,
        url: str | None = None,
        client_cert: bytes | None = None,
        client_key: bytes | None = None,
        server_cert: bytes | None = None,
        ca_cert: bytes | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Describe the endpoint; connects lazily on the first request."""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """Send one request (path includes the query) and return (status, body bytes)."""

def provider_instances(body: bytes, controller_id: str, pool_id: str | None) -> bytes:
    """Convert a GET /1.0/instances?recursion=1|2 response into a ProviderInstance JSON array."""

def provider_instance(instance: bytes, state: bytes | None) -> bytes:
    """Convert GET /1.0/instances/<name> (+ optional /state) into ProviderInstance JSON."""

def cloud_config(spec: bytes) -> bytes:
    """Render a #cloud-config document from its JSON description (see rust/src/cloudinit.rs)."""

def b64encode(data: bytes) -> str:
    """Encode bytes as standard, padded base64."""
