"""Profiles read for the pool policy, shared between provider processes for a minute.

LXD 5.0 renders a profile's `used_by` on every read: with thousands of instances on a runner
profile one read costs LXD a quarter of a second to a second, and a burst of 50 creates each
reading it made LXD's database time out ("Failed to begin transaction: context deadline
exceeded"). So what a process reads is kept in a file of its own per server, project and
profile, and the other processes read that file while it is younger than FRESH_SECONDS; one
process at a time refreshes it (an exclusive lock), the others wait for it.

The files live in a directory only this user can use: /tmp/garm-provider-lxd-<uid>, mode
0700, checked with lstat (not a symlink, owned by us, nobody else may enter); when it is not
so (someone else made it), nothing is cached and every process reads LXD. A profile an
operator changes is judged anew at most FRESH_SECONDS later (docs/security.md).
"""

from __future__ import annotations

import os
import time

from ._native import json_dumps, json_loads
from .lxd import quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

FRESH_SECONDS = 60.0
MAX_ENTRY_BYTES = 4 << 20
_NAME_LIMIT = 240


def cache_dir() -> str | None:
    """This user's private cache directory, made when missing; None when it is not safe."""
    import stat

    path = f"/tmp/garm-provider-lxd-{os.geteuid()}"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
    return path if private and not info.st_mode & 0o077 else None


def cached_profile(
    server: str, project: str, name: str, read: Callable[[], dict[str, Any] | None]
) -> dict[str, Any] | None:
    """The profile `read()` returns, from this user's cache while fresh (None: no such profile)."""
    import fcntl

    directory = cache_dir()
    entry = f"profile-{quote(server, '')}-{quote(project or 'default', '')}-{quote(name, '')}"
    if directory is None or len(entry) > _NAME_LIMIT:
        return read()
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(os.path.join(directory, entry), flags, 0o600)
    except OSError:
        return read()
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        found = _fresh(fd)
        if found is not None:
            return found[0]
        # Stale or empty: one process reads LXD, the others wait and then take its answer.
        fcntl.flock(fd, fcntl.LOCK_EX)
        found = _fresh(fd)
        if found is not None:
            return found[0]
        profile = read()
        os.ftruncate(fd, 0)
        if profile is None:  # a missing profile is not remembered: it may be made next
            return None
        # What the policy judges; used_by (a line per instance) would only make reads dearer.
        kept = {key: profile.get(key) for key in ("config", "devices")}
        os.pwrite(fd, json_dumps({"profile": kept}), 0)
        return kept
    except OSError:
        return read()
    finally:
        os.close(fd)


def _fresh(fd: int) -> tuple[dict[str, Any]] | None:
    """(the cached profile,) when the entry is a fresh, whole one of ours; else None."""
    import stat

    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        raise OSError("not a private regular file")
    if not 0 < info.st_size <= MAX_ENTRY_BYTES or time.time() - info.st_mtime > FRESH_SECONDS:
        return None
    try:
        entry = json_loads(os.pread(fd, info.st_size, 0))
    except ValueError:
        return None
    profile = entry.get("profile") if isinstance(entry, dict) else None
    return (profile,) if isinstance(profile, dict) else None
