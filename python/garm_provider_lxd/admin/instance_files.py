"""Files of an instance read over LXD's SFTP endpoint, never opening one that is not regular.

LXD's file API (GET /1.0/instances/<name>/files) opens whatever the path names before it
answers, and calls a FIFO a "file": the open waits for a writer that never comes, and while it
waits LXD's per-instance file server cannot stop, so neither can the instance. The SFTP endpoint
(GET /1.0/instances/<name>/sftp, LXD 5.0 and Incus) gives the file's whole mode from an lstat,
which opens nothing, and lets the open be read-write: a FIFO swapped in after the lstat then
opens at once instead of waiting, and an fstat of the open handle turns it away. Nothing is
ever written. Only the few SFTP v3 requests this needs are spoken (draft-ietf-secsh-filexfer-02).
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING, Any

from ..errors import LxdError, LxdTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

_INIT, _VERSION, _OPEN, _CLOSE, _READ, _LSTAT, _FSTAT = 1, 2, 3, 4, 5, 7, 8
_STATUS, _HANDLE, _DATA, _ATTRS = 101, 102, 103, 105
_EOF, _NO_SUCH_FILE = 1, 2
_OPEN_READ, _OPEN_WRITE = 0x1, 0x2
_ATTR_SIZE, _ATTR_UIDGID, _ATTR_PERMISSIONS = 0x1, 0x2, 0x4
_MAX_PACKET = 256 << 10
READ_CHUNK = 32 << 10  # the most LXD's SFTP server returns for one read
_FILE_TYPES = {
    0o010000: "a FIFO",
    0o020000: "a character device",
    0o040000: "a directory",
    0o060000: "a block device",
    0o100000: "a regular file",
    0o120000: "a symbolic link",
    0o140000: "a socket",
}
REGULAR = _FILE_TYPES[0o100000]


class NotRegularFile(LxdError):
    """The path names something other than a regular file; it was not read."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.kind = kind


class NoSuchFile(LxdError):
    """The path names nothing."""


class InstanceFiles:
    """An SFTP session on one instance's file system (a context manager)."""

    def __init__(self, sock: socket.socket, response: Any, where: str) -> None:
        self._sock = sock
        self._response = response
        self._where = where
        self._next_id = 0

    def __enter__(self) -> InstanceFiles:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the session (LXD then closes its side)."""
        try:
            self._sock.close()
        finally:
            self._response.close()

    def file_type(self, path: str) -> str | None:
        """What path is ("a regular file", "a FIFO", ...), links not followed; None if absent."""
        kind, body = self._request(_LSTAT, _string(path.encode()))
        if kind == _STATUS and _status_code(body) == _NO_SUCH_FILE:
            return None
        return _type_of(self._expect(kind, body, _ATTRS, path))

    def read_regular(self, path: str, limit: int, feed: Callable[[bytes], None]) -> bool:
        """Pass the regular file path to feed chunk by chunk; True if it stopped at limit bytes."""
        kind = self.file_type(path)
        if kind is None:
            raise NoSuchFile(f"{path}: no such file")
        if kind != REGULAR:
            raise NotRegularFile(path, kind)
        return self.read_opened(path, limit, feed)

    def read_opened(self, path: str, limit: int, feed: Callable[[bytes], None]) -> bool:
        """read_regular's second half: open path, refuse what is not a regular file, read it."""
        # Read-write, never written: see the module's docstring.
        flags = struct.pack(">II", _OPEN_READ | _OPEN_WRITE, 0)
        kind, body = self._request(_OPEN, _string(path.encode()) + flags)
        handle = _string(_first_string(self._expect(kind, body, _HANDLE, path)))
        # On a failure the handle goes with the session, which the caller closes.
        opened = _type_of(self._expect(*self._request(_FSTAT, handle), _ATTRS, path))
        if opened != REGULAR:
            raise NotRegularFile(path, opened)
        offset = 0
        while offset < limit:
            ask = struct.pack(">QI", offset, min(READ_CHUNK, limit - offset))
            kind, body = self._request(_READ, handle + ask)
            if kind == _STATUS and _status_code(body) == _EOF:
                break
            data = _first_string(self._expect(kind, body, _DATA, path))
            if not data:
                break
            feed(data)
            offset += len(data)
        self._request(_CLOSE, handle)
        return offset >= limit

    def _request(self, kind: int, payload: bytes) -> tuple[int, bytes]:
        self._next_id += 1
        self._send(kind, struct.pack(">I", self._next_id) + payload)
        answer, body = self._receive()
        if _u32(body, 0) != self._next_id:
            raise LxdError(f"{self._where}: SFTP answer out of order")
        return answer, body[4:]

    def _send(self, kind: int, payload: bytes) -> None:
        try:
            self._sock.sendall(struct.pack(">IB", len(payload) + 1, kind) + payload)
        except TimeoutError:
            raise LxdTimeoutError(f"{self._where}: SFTP request timed out") from None
        except OSError as exc:
            raise LxdError(f"{self._where}: SFTP request failed: {exc}") from None

    def _receive(self) -> tuple[int, bytes]:
        length, kind = struct.unpack(">IB", self._exactly(5))
        if not 1 <= length <= _MAX_PACKET:
            raise LxdError(f"{self._where}: SFTP packet of {length} bytes")
        return kind, self._exactly(length - 1)

    def _exactly(self, size: int) -> bytes:
        data = bytearray()
        try:
            while len(data) < size:
                chunk = self._sock.recv(size - len(data))
                if not chunk:
                    raise LxdError(f"{self._where}: the SFTP connection closed")
                data += chunk
        except TimeoutError:
            raise LxdTimeoutError(f"{self._where}: no SFTP answer in time") from None
        except OSError as exc:
            raise LxdError(f"{self._where}: SFTP connection failed: {exc}") from None
        return bytes(data)

    def _expect(self, kind: int, body: bytes, wanted: int, path: str) -> bytes:
        if kind == wanted:
            return body
        if kind == _STATUS:
            code = _status_code(body)
            message = _first_string(body[4:]).decode("utf-8", "replace") if len(body) >= 8 else ""
            error = NoSuchFile if code == _NO_SUCH_FILE else LxdError
            raise error(f"{path}: {message or f'SFTP status {code}'}")
        raise LxdError(f"{self._where}: unexpected SFTP answer {kind}")


def open_instance_files(api: Any, name: str, timeout: float) -> InstanceFiles:
    """An SFTP session on instance name (api: a pylxd API root for its project)."""
    node = api.instances[name].sftp
    params = {"project": node._project} if node._project else {}
    headers = {"Upgrade": "sftp", "Connection": "Upgrade"}
    where = f"SFTP to instance {name}"
    from requests import RequestException

    try:
        response = node.session.get(
            node._api_endpoint, params=params, headers=headers, stream=True, timeout=timeout
        )
    except RequestException as exc:
        raise LxdError(f"{where}: request to LXD failed: {exc}") from None
    if response.status_code != 101:
        try:
            error = str(response.json().get("error") or response.status_code)
        except ValueError:
            error = f"HTTP {response.status_code}"
        finally:
            response.close()
        raise LxdError(f"{where}: {error}")
    raw = response.raw
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if not isinstance(sock, socket.socket):
        response.close()
        raise LxdError(f"{where}: the upgraded connection is not reachable")
    sock.settimeout(timeout)
    files = InstanceFiles(sock, response, where)
    try:
        files._send(_INIT, struct.pack(">I", 3))
        kind, _ = files._receive()
    except BaseException:
        files.close()
        raise
    if kind != _VERSION:
        files.close()
        raise LxdError(f"{where}: not an SFTP server")
    return files


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _first_string(body: bytes) -> bytes:
    length = _u32(body, 0)
    if len(body) < 4 + length:
        raise LxdError("malformed SFTP answer")
    return body[4 : 4 + length]


def _status_code(body: bytes) -> int:
    return _u32(body, 0)


def _type_of(attrs: bytes) -> str:
    flags = _u32(attrs, 0)
    if not flags & _ATTR_PERMISSIONS:
        return "of an unknown type"
    mode = _u32(attrs, 4 + (8 if flags & _ATTR_SIZE else 0) + (8 if flags & _ATTR_UIDGID else 0))
    return _FILE_TYPES.get(mode & 0o170000, "of an unknown type")


def _u32(data: bytes, offset: int) -> int:
    if len(data) < offset + 4:
        raise LxdError("malformed SFTP answer")
    return int.from_bytes(data[offset : offset + 4], "big")
