"""Files the operator names in the config: regular files only, read with a size bound."""

from __future__ import annotations

import os
import stat

from .errors import ConfigError

# Bounds far above any real file (a config is a few hundred bytes, a PEM certificate or key a
# few KB) and far below what would cost noticeable memory or time on every runner command.
MAX_CONFIG_BYTES = 1 << 20
MAX_PEM_BYTES = 1 << 20

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def read_regular_file(path: str, what: str, limit: int) -> bytes:
    """Return the bytes of the regular file at path; ConfigError("<what>: cannot read: ...")."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it. It has no
    # effect on reading a regular file.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read: {_open_problem(path, exc)}") from None
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind:
            raise ConfigError(f"{what}: cannot read: {kind}, not a regular file")
        chunks = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise ConfigError(f"{what}: cannot read: larger than the {limit >> 20} MiB limit")
    return b"".join(chunks)


def read_pem(path: str, key: str) -> bytes:
    """The PEM file config key names, read by the rule above (both LXD clients use it)."""
    return read_regular_file(path, f"config: {key} {path}", MAX_PEM_BYTES)


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return ""
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _open_problem(path: str, exc: OSError) -> str:
    # Opening a unix socket fails (ENXIO), which says nothing useful: name what it is instead.
    try:
        kind = _kind(os.stat(path).st_mode)
    except OSError:
        kind = ""
    return f"{kind}, not a regular file" if kind else str(exc.strerror or exc)
