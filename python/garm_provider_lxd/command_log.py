"""The command record: one JSON line per GARM command, appended to [diagnostics] command_log.

Every process appends its line with a single write(2) to a descriptor opened with O_APPEND, so
lines from hundreds of concurrent commands never tear or interleave on a local file system.
The file is rotated by size: the process whose line takes it past command_log_max_bytes
renames it to <path>.1 (and .1 to .2, up to command_log_keep) under an exclusive flock on
<path>.lock, taken without waiting and after looking at the size again, so exactly one process
rotates and nobody ever blocks. A line never holds a token, user data or anything from stdin.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .config import Config

# O_NONBLOCK: opening a FIFO planted at the path must not wait for a reader (it fails with
# ENXIO, or the regular-file check below refuses it). O_NOFOLLOW: a symlink is refused.
_OPEN_FLAGS = (
    os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY
) | os.O_CLOEXEC
MAX_ERROR_CHARS = 300
MAX_FIELD_CHARS = 100
_S_IFMT = 0o170000
_S_IFREG = 0o100000
# Set by the command while it runs: the instance a CreateInstance names on stdin.
_noted: dict[str, str] = {}


def note_instance(name: object, pool: object) -> None:
    """Remember the instance and pool a command works on (CreateInstance reads them on stdin)."""
    _noted["instance"] = _field(name)
    _noted["pool"] = _field(pool)


def note_not_up(reason: str) -> None:
    """Remember why the runner DeleteInstance removes did not come up (its post-mortem's reason).

    The reason quotes what the runner printed: the caller redacts tokens, this bounds the line.
    """
    from .messages import one_line

    _noted["did_not_come_up"] = one_line(reason, MAX_ERROR_CHARS)


class CommandRecord:
    """One command's line: started when the command starts, written when it ends."""

    def __init__(self, config: Config, env: Mapping[str, str], command: str, version: str) -> None:
        self.config = config
        # One command per process for GARM; tests run several in one: start from zero.
        _noted.clear()
        times = getattr(sys.modules.get(f"{__package__}.lxd"), "LxdTimes", None)
        if times is not None:
            times.requests, times.seconds, times.operation_seconds = 0, 0.0, 0.0
        self.started = time.monotonic()
        self.time = time.time()
        self.fields: dict[str, object] = {
            "command": command,
            "interface": version,
            "controller": _field(env.get("GARM_CONTROLLER_ID", "").strip()),
            "pool": _field(env.get("GARM_POOL_ID", "").strip()),
            "instance": _field(env.get("GARM_INSTANCE_ID", "").strip()),
        }

    def line(self, exit_code: int, error: str) -> bytes:
        """The JSON line (with its newline) for a command that ended with exit_code."""
        from ._native import json_dumps

        wall = time.monotonic() - self.started
        fields = {**self.fields, **{k: v for k, v in _noted.items() if v}}
        lxd = sys.modules.get(f"{__package__}.lxd")
        times = getattr(lxd, "LxdTimes", None)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time))
        record: dict[str, object] = {
            "time": f"{stamp}.{int(self.time % 1 * 1000):03d}Z",
            **fields,
            "exit": exit_code,
            "wall": round(wall, 4),
            "lxd": round(times.seconds, 4) if times else 0.0,
            "lxd_operations": round(times.operation_seconds, 4) if times else 0.0,
            "lxd_requests": times.requests if times else 0,
        }
        if error:
            from .messages import one_line

            record["error"] = one_line(error, MAX_ERROR_CHARS)
        return json_dumps(record) + b"\n"

    def finish(self, exit_code: int, error: str, warn: Callable[[str], None]) -> None:
        """Append the line; a log that cannot be written is one warning, never a failure."""
        path = self.config.command_log
        try:
            append_line(path, self.line(exit_code, error), self.config)
        except OSError as exc:
            warn(f"warning: command_log {path}: not written: {exc.strerror or exc}")
        except ValueError as exc:
            warn(f"warning: command_log {path}: not written: {exc}")


def append_line(path: str, line: bytes, config: Config) -> None:
    """Append one line to the log at path with one write, then rotate it when it is full."""
    fd = os.open(path, _OPEN_FLAGS, 0o600)
    try:
        info = os.fstat(fd)
        if info.st_mode & _S_IFMT != _S_IFREG:
            raise ValueError("not a regular file")
        written = os.write(fd, line)
        if written != len(line):
            raise ValueError(f"short write ({written} of {len(line)} bytes)")
    finally:
        os.close(fd)
    if info.st_size + len(line) >= config.command_log_max_bytes > 0:
        rotate(path, config.command_log_keep, config.command_log_max_bytes)


def rotate(path: str, keep: int, max_bytes: int) -> None:
    """Shift path to path.1 (path.1 to path.2 ... up to keep) unless another process is at it."""
    import fcntl

    lock = os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                   | os.O_NONBLOCK, 0o600)  # fmt: skip
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another process is rotating right now
        # Under the lock, look again: another process may have rotated since our write (and
        # nobody may have written a new file yet).
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if info.st_mode & _S_IFMT != _S_IFREG or info.st_size < max_bytes:
            return
        if keep <= 0:
            os.unlink(path)
            return
        for index in range(keep - 1, 0, -1):
            try:
                os.rename(f"{path}.{index}", f"{path}.{index + 1}")
            except FileNotFoundError:
                continue
        os.rename(path, f"{path}.1")
    finally:
        os.close(lock)  # closing releases the flock


def _field(value: object) -> str:
    """A value GARM passed, bounded and without control characters."""
    text = value if isinstance(value, str) else ""
    return "".join(c if c.isprintable() else "?" for c in text[:MAX_FIELD_CHARS])
