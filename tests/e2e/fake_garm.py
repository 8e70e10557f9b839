"""A GARM-like metadata and callback server for end-to-end tests.

Run inside the test LXD's network namespace so containers can reach it::

    ip netns exec garm-lxd python3 tests/e2e/fake_garm.py --state-dir DIR \
        --bind 10.161.0.1 --lifetime 900

The test and the server share only ``DIR``: the test registers an instance by
writing ``DIR/instances/<name>.json`` (see ``Instance``), the server writes its
port to ``DIR/ready.json`` once listening and appends one JSON line per request
to ``DIR/events.jsonl``. Like GARM, every metadata and callback call must carry
``Authorization: Bearer <instance token>``, and a runner that reported ``idle``
or ``failed`` gets 401 from then on. The server stops by itself after
``--lifetime`` seconds. It never records tokens or credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from e2e.runner_tarball import FILENAME, GO_FILENAME, build_go_tarball, build_runner_tarball

HERE = Path(__file__).resolve().parent
INSTALL_SCRIPT = (HERE / "garm_install_script.sh").read_text()

# GARM's runner/metadata.go systemdUnitTemplate, filled in the same way.
UNIT_TEMPLATE = """[Unit]
Description=GitHub Actions Runner ({service})
After=network.target

[Service]
ExecStart=/home/{user}/actions-runner/runsvc.sh
User={user}
WorkingDirectory=/home/{user}/actions-runner
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec=5min

[Install]
WantedBy=multi-user.target
"""

FINAL_STATES = ("idle", "failed")
JIT_FILES = ("runner", "credentials", "credentials_rsaparams")


class Store:
    """Registered instances (read from disk per request), statuses and the event log."""

    def __init__(self, state_dir: Path) -> None:
        self.instances_dir = state_dir / "instances"
        self.instances_dir.mkdir(parents=True, exist_ok=True)
        self.events_path = state_dir / "events.jsonl"
        self.lock = threading.Lock()
        # Written by handler threads; single dict/set operations are atomic.
        self.status: dict[str, str] = {}
        self.token_fetched: set[str] = set()

    def by_token(self, token: str) -> dict[str, Any] | None:
        """Return the registered instance whose token this is, if any."""
        for path in self.instances_dir.glob("*.json"):
            try:
                inst = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if token and inst.get("token") == token:
                return dict(inst)
        return None

    def record(self, event: dict[str, Any]) -> None:
        """Append one event line with a wall-clock timestamp."""
        event = {"t": time.time(), **event}
        with self.lock, self.events_path.open("a") as out:
            out.write(json.dumps(event, sort_keys=True) + "\n")


def render_install_script(inst: dict[str, Any]) -> str:
    """Fill the GARM-like install script with one instance's values."""
    values = {
        "CALLBACK_URL": inst["callback_url"],
        "METADATA_URL": inst["metadata_url"],
        "CALLBACK_TOKEN": inst["token"],
        "RUNNER_USERNAME": "runner",
        "RUNNER_GROUP": "runner",
        "DOWNLOAD_URL": inst["download_url"],
        "FILE_NAME": inst.get("filename", FILENAME),
        "TEMP_DOWNLOAD_TOKEN": inst.get("temp_download_token", ""),
        "REPO_URL": inst["repo_url"],
        "RUNNER_NAME": inst["name"],
        "RUNNER_LABELS": ",".join(inst.get("labels") or []),
        "USE_JIT_CONFIG": "true" if inst.get("jit") else "false",
        "ENABLE_BOOT_DEBUG": "true" if inst.get("boot_debug") else "false",
    }
    return re.sub(r"@@([A-Z_]+)@@", lambda m: values[m.group(1)], INSTALL_SCRIPT)


def jit_file(inst: dict[str, Any], name: str) -> bytes:
    """The JIT config file GARM would hand out for this instance."""
    if name == "runner":
        return json.dumps(
            {
                "agentId": inst["agent_id"],
                "agentName": inst["name"],
                "poolId": 1,
                "poolName": "Default",
                "gitHubUrl": inst["repo_url"],
                "workFolder": "_work",
            },
            indent=2,
        ).encode()
    if name == "credentials":
        return b'{"scheme": "OAuthAccessToken", "data": {}}'
    return b'{"d": "", "dp": "", "dq": "", "exponent": "", "inverseQ": "", "modulus": ""}'


def service_name(inst: dict[str, Any]) -> str:
    """GARM's service name for a repository runner: actions.runner.<owner-repo>.<name>."""
    owner_repo = urlsplit(inst["repo_url"]).path.strip("/").replace("/", "-")
    return f"actions.runner.{owner_repo}.{inst['name']}"


class Handler(BaseHTTPRequestHandler):
    """Routes GARM's metadata, callback and tools URLs."""

    server_version = "fake-garm/1"
    store: Store
    tools: dict[str, bytes]
    download_rate = 0.0  # bytes a second for tools downloads; 0: as fast as the socket goes

    def log_message(self, format: str, *args: Any) -> None:
        """Keep request lines (which carry no tokens) off the console."""

    def _send(
        self, code: int, body: bytes = b"", ctype: str = "application/json", rate: float = 0.0
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not rate:
            self.wfile.write(body)
            return
        # A download from the internet, paced: one 1 MiB chunk every chunk/rate seconds.
        begin, chunk = time.monotonic(), 1 << 20
        for offset in range(0, len(body), chunk):
            self.wfile.write(body[offset : offset + chunk])
            ahead = begin + (offset + chunk) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def _error(self, code: int, message: str) -> None:
        body = json.dumps({"error": HTTPStatus(code).phrase, "details": message}).encode()
        self._send(code, body)

    def _authorized(self) -> dict[str, Any] | None:
        header = self.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        inst = self.store.by_token(token.strip())
        if inst is None or self.store.status.get(inst["name"]) in FINAL_STATES:
            return None
        return inst

    def do_GET(self) -> None:
        """Serve metadata (bearer token required) and the runner tarball."""
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        if path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
            self.store.record({"kind": "get", "path": path, "code": 200})
            return
        if path.startswith("/tools/"):
            data = self.tools.get(path[len("/tools/") :])
            code = 404 if data is None else 200
            if data is None:
                self._error(code, "Not Found")
            else:
                self._send(code, data, "application/octet-stream", self.download_rate)
            self.store.record({"kind": "download", "path": path, "code": code})
            return
        inst = self._authorized()
        name = inst["name"] if inst else None
        try:
            code = self._metadata(inst, path, parse_qs(url.query)) if inst else 401
        except (KeyError, TypeError, ValueError) as exc:
            code = 500
            self._error(code, f"bad instance registration: {type(exc).__name__}")
        if code == 401:
            self._error(401, "Unauthorized")
        self.store.record({"kind": "get", "instance": name, "path": path, "code": code})

    def _metadata(self, inst: dict[str, Any], path: str, query: dict[str, list[str]]) -> int:
        prefix = "/api/v1/metadata/"
        if not path.startswith(prefix):
            self._error(404, "Not Found")
            return 404
        what = path[len(prefix) :]
        refused = set(inst.get("refuse") or [])
        if what in refused:
            return 401
        if what == "install-script":
            self._send(200, render_install_script(inst).encode(), "text/plain")
        elif what.startswith("credentials/") and what.split("/", 1)[1] in JIT_FILES:
            if not inst.get("jit"):
                return 401
            data = jit_file(inst, what.split("/", 1)[1])
            self.send_response(200)
            self.send_header("Content-Disposition", f"attachment; filename=.{what[12:]}")
            self.send_header("Content-Type", "octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif what == "system/service-name":
            self._send(200, service_name(inst).encode(), "text/plain")
        elif what == "systemd/unit-file":
            user = (query.get("runAsUser") or ["runner"])[0]
            unit = UNIT_TEMPLATE.format(service=service_name(inst), user=user)
            self._send(200, unit.encode(), "text/plain")
        elif what == "runner-registration-token":
            if inst.get("jit") or inst["name"] in self.store.token_fetched:
                return 401
            self.store.token_fetched.add(inst["name"])
            self._send(200, f"fake-registration-token-{inst['agent_id']}".encode())
        elif what == "system/cert-bundle":
            self._send(200, b'{"root_certificates": {}}')
        else:
            self._error(404, "Not Found")
            return 404
        return 200

    def do_POST(self) -> None:
        """Record status and system-info callbacks."""
        path = urlsplit(self.path).path.rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        inst = self._authorized()
        kind = {
            "/api/v1/callbacks/status": "status",
            "/api/v1/callbacks/system-info": "system-info",
        }.get(path)
        if kind is None or inst is None:
            code = 404 if kind is None else 401
            self._error(code, "Not Found" if code == 404 else "Unauthorized")
            self.store.record({"kind": "post", "path": path, "code": code})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400, "invalid post body")
            self.store.record({"kind": kind, "instance": inst["name"], "code": 400})
            return
        if kind == "status" and body.get("status") in FINAL_STATES:
            self.store.status[inst["name"]] = body["status"]
        self._send(200, b"{}")
        self.store.record({"kind": kind, "instance": inst["name"], "code": 200, "body": body})


def main(argv: list[str] | None = None) -> int:
    """Serve until the lifetime ends or the process is terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--bind", default="10.161.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=900.0)
    parser.add_argument("--tls-cert", type=Path, help="also serve HTTPS with this certificate")
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument(
        "--runner-padding", type=int, default=0, help="pad the runner tarball by this many bytes"
    )
    parser.add_argument(
        "--download-mbps",
        type=float,
        default=0.0,
        help="pace tools downloads to this many MB/s, as over the internet (default: unpaced)",
    )
    args = parser.parse_args(argv)

    Handler.download_rate = args.download_mbps * 1e6
    Handler.store = Store(args.state_dir)
    Handler.tools = {
        FILENAME: build_runner_tarball(args.runner_padding),
        GO_FILENAME: build_go_tarball(),
    }
    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    assert isinstance(host, str) and isinstance(port, int)  # an AF_INET server: (host, port)
    ready = {"pid": os.getpid(), "host": host, "port": port, "base_url": f"http://{host}:{port}"}
    servers = [server]
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        tls_server = ThreadingHTTPServer((args.bind, 0), Handler)
        tls_server.daemon_threads = True
        tls_server.socket = context.wrap_socket(tls_server.socket, server_side=True)
        threading.Thread(target=tls_server.serve_forever, daemon=True).start()
        ready["tls_base_url"] = f"https://{host}:{tls_server.server_port}"
        servers.append(tls_server)

    def stop() -> None:
        for s in servers:
            s.shutdown()

    timer = threading.Timer(args.lifetime, stop)
    timer.daemon = True
    timer.start()
    tmp = args.state_dir / "ready.json.tmp"
    tmp.write_text(json.dumps(ready))
    tmp.replace(args.state_dir / "ready.json")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
