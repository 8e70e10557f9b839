"""Post-mortems: what a runner that did not come up showed, saved just before DeleteInstance.

Whether a runner came up is read from what the instance itself shows (never exec), in this order
(docs/operating-runners.md):

1. the instance is not Running: it did not come up;
2. /var/log/cloud-init-output.log does not exist: cloud-init never ran the user data;
3. it is not a regular file (a FIFO, a symlink, a directory...): runner code replaced it;
4. the install script's status lines (`garm-runner-status: <status>: ...`, printed by the
   provider's default script): came up when the last one is `idle`;
5. GARM's injected wrapper (traced with `set -x`): came up when it reached the
   `rm -f /tmp/real-install.sh` that follows a successful install script;
6. any other install script: came up when cloud-init printed its final "finished at" line.

The instance's console log is read first (one bounded GET, served by LXD from the host side):
cloud-init's final stage writes to the console too, so a healthy runner's console shows rules
4 to 6 from the line where that stage started, and the delete goes on without touching any file
in the instance. Only when the console does not show that the runner came up (no console, no
start of the final stage in it, a failed status, cut at MAX_CONSOLE_BYTES) is the end of its
cloud-init output read, and the same rules decide on it. LXD 5.0 serves a running container's
console from a ring buffer that each GET drains: it is read once, and the post-mortem keeps
those bytes.

Only the last LOG_TAIL_BYTES (1 MiB) of the output are read: every marker above but the
wrapper's start is printed at its end. An install script that printed more than that after
GARM's wrapper started it is judged by the cloud-init rule (6) when it failed.

That file read is one SFTP session on LXD's `/1.0/instances/<name>/sftp` endpoint through the
Rust transport (rust/src/sftp.rs); LXD starts its file server in the instance for it, which is
what a healthy runner's delete no longer pays. Everything the instance holds is written by
runner code and treated as hostile: the path is looked at with
an lstat first, and nothing but a regular file is opened (a FIFO, which LXD's file API would
wait on, costs nothing); a regular file is opened read-write, so a FIFO swapped in after the
lstat opens at once, and the open handle's fstat turns it away. Every read is bounded in bytes,
and all of them together in time (POSTMORTEM_SECONDS: only a server that does not answer makes
a delete wait that long; a read left without time is noted in the post-mortem and not sent).
Any failure here is one warning on stderr; the delete goes on.
"""

from __future__ import annotations

import time

from .errors import LxdConnectionError, LxdError, LxdTimeoutError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from .config import Config
    from .lxd import Lxd

CLOUD_INIT_OUTPUT = "/var/log/cloud-init-output.log"
# What the default install script prints for each status it reports to GARM
# (templates/install_runner.sh.j2, report()), and what install scripts print when they fail.
STATUS_MARKERS = (b"garm-runner-status: ", b"runner install failed: ")
IDLE_STATUS = b"garm-runner-status: idle"
# GARM's linux wrapper runs with `set -ex`: the trace shows the install script starting and,
# only when it succeeded, the clean-up after it.
WRAPPER_STARTED = b"+ /tmp/real-install.sh"
WRAPPER_SUCCEEDED = b"+ rm -f /tmp/real-install.sh"
CLOUD_INIT_FINISHED = b" finished at "
# cloud-init's final stage, which runs the user data, starts with this line (on the console too).
FINAL_STAGE_STARTED = b" running 'modules:final' at "
LOG_TAIL_BYTES = 1 << 20  # read only this much of the end of the cloud-init output
MAX_CONSOLE_BYTES = 1 << 20
MAX_STATE_BYTES = 1 << 20
TAIL_BYTES = 64 << 10  # keep this much of the end of each log
MAX_STATUS_LINES = 50
MAX_LINE_BYTES = 1000
# One deadline for all the reads of one post-mortem (console, cloud-init output, state): what
# a failed runner's delete may spend more. A FIFO costs nothing (never opened); only a server
# that does not answer makes a delete wait this long, and then the post-mortem says so.
POSTMORTEM_SECONDS = 1.0
OUT_OF_TIME = f"not read within the post-mortem's {POSTMORTEM_SECONDS:g} s"
SUFFIX = ".json.gz"
FORMAT = "garm-provider-lxd post-mortem 1"
# Instance config kept in a post-mortem: LXD's own settings and the provider's tags. Everything
# else (user data, cloud-init keys, environment.*, whatever a pool's specs set) is dropped
# whole; only the names of dropped keys are kept.
KEPT_CONFIG_PREFIXES = ("image.", "limits.", "security.", "boot.", "volatile.", "snapshots.")
KEPT_CONFIG_KEYS = (
    "user.runner-controller-id",
    "user.runner-pool-id",
    "user.os-type",
    "user.os-arch",
)
KEPT_INSTANCE_FIELDS = (
    "name", "type", "status", "architecture", "profiles", "created_at", "last_used_at",
    "location", "project", "ephemeral", "stateful", "devices",
)  # fmt: skip


class Evidence:
    """What one bounded look at an instance found."""

    def __init__(self, log: bytes | None, log_note: str, complete: bool) -> None:
        self.log = log
        self.log_note = log_note
        self.complete = complete


def did_not_come_up(status: str, log: bytes | None) -> str:
    """Why a runner did not come up, from its status and cloud-init output ("" if it did)."""
    if status != "Running":
        return f"instance is {status or 'in an unknown state'}"
    if log is None:
        return f"no {CLOUD_INIT_OUTPUT}: cloud-init never ran the user data"
    statuses = status_lines(log)
    if statuses:
        last = statuses[-1]
        if last.startswith(IDLE_STATUS):
            return ""
        return f"last install status: {last.decode('utf-8', 'replace')}"
    if WRAPPER_STARTED in log:
        if WRAPPER_SUCCEEDED in log:
            return ""
        return "GARM's install script did not succeed"
    if CLOUD_INIT_FINISHED in log:
        return ""
    return "cloud-init did not finish"


def status_lines(log: bytes) -> list[bytes]:
    """The install script's status lines in log (the last MAX_STATUS_LINES, each bounded)."""
    found = []
    for line in log.split(b"\n"):
        for marker in STATUS_MARKERS:
            start = line.find(marker)
            if start >= 0:
                found.append(line[start : start + MAX_LINE_BYTES].rstrip(b"\r"))
                break
    return found[-MAX_STATUS_LINES:]


def inspect_before_delete(
    lxd: Lxd, name: str, meta: Mapping[str, Any], config: Config, warn: Callable[[str], None]
) -> None:
    """Save a post-mortem of runner name if it did not come up; never raises, never blocks."""
    deadline = time.monotonic() + POSTMORTEM_SECONDS
    try:
        status = str(meta.get("status") or "")
        path = f"{_instance_path(name)}/console"
        _, console, console_note = _read(lxd, path, MAX_CONSOLE_BYTES, deadline)
        if status == "Running" and came_up_by_console(console, console_note):
            return
        evidence = _read_log(lxd, name, deadline)
        reason = did_not_come_up(status, evidence.log if not evidence.log_note else None)
        if evidence.log_note and status == "Running":
            reason = f"{CLOUD_INIT_OUTPUT} {evidence.log_note}"
        if not reason:
            return
        from .command_log import note_not_up

        note_not_up(redact_secrets(reason))
        document = _document(lxd, name, meta, reason, evidence, (console, console_note), deadline)
        save(config, name, document)
    except Exception as exc:  # a post-mortem must never stop the delete
        from .messages import error_line

        warn(f"warning: post-mortem of {name} not saved: {error_line(exc, 200)}")


def came_up_by_console(console: bytes, note: str) -> bool:
    """Whether a running instance's console shows its runner came up (rules 4 to 6 on it).

    Only from where cloud-init's final stage started: a console whose start the ring buffer
    dropped could have lost GARM's wrapper start, so rule 6 alone would judge a failure healthy.
    """
    start = console.rfind(FINAL_STAGE_STARTED)
    if note or start < 0 or len(console) >= MAX_CONSOLE_BYTES:
        return False
    return not did_not_come_up("Running", console[start:])


def _instance_path(name: str) -> str:
    from .lxd import api_path

    return api_path("instances", name)


def _read_log(lxd: Lxd, name: str, deadline: float) -> Evidence:
    from .lxd import REGULAR_FILE

    timeout = deadline - time.monotonic()
    if timeout <= 0:
        return Evidence(None, OUT_OF_TIME, False)
    try:
        kind, data, size = lxd.read_file_tail(name, CLOUD_INIT_OUTPUT, LOG_TAIL_BYTES, timeout)
    except LxdTimeoutError:
        return Evidence(None, OUT_OF_TIME, False)
    except LxdConnectionError:
        raise  # LXD itself is gone: one warning, and the delete reports it
    except LxdError as exc:
        from .messages import error_line

        return Evidence(None, f"not read ({error_line(exc, 200)})", False)
    if kind is None:
        return Evidence(None, "", True)
    if kind != REGULAR_FILE:
        return Evidence(None, f"is {kind}, not a regular file", False)
    return Evidence(data, "", len(data) >= size)


def _read(lxd: Lxd, path: str, limit: int, deadline: float) -> tuple[int, bytes, str]:
    """(status, at most limit bytes, "" or why it was not read) of one GET, before deadline."""
    timeout = deadline - time.monotonic()
    if timeout <= 0:
        return 0, b"", OUT_OF_TIME
    try:
        status, body = lxd.read_bounded(path, limit, timeout)
    except LxdTimeoutError:
        return 0, b"", OUT_OF_TIME
    if status >= 400:
        return status, b"", f"not read (HTTP {status})"
    return status, body, ""


def _document(
    lxd: Lxd,
    name: str,
    meta: Mapping[str, Any],
    reason: str,
    evidence: Evidence,
    console_read: tuple[bytes, str],
    deadline: float,
) -> dict[str, Any]:
    from ._native import json_loads

    _, state_body, state_note = _read(
        lxd, f"{_instance_path(name)}/state", MAX_STATE_BYTES, deadline
    )
    try:
        state: object = (json_loads(state_body) or {}).get("metadata") if not state_note else None
    except ValueError:
        state, state_note = None, "not JSON (cut at the size bound?)"
    console, console_note = console_read
    log = evidence.log or b""
    config = meta.get("config") or {}
    return {
        "format": FORMAT,
        "name": name,
        "project": lxd.project or "default",
        "saved_at": _stamp(time.time(), "%Y-%m-%dT%H:%M:%SZ"),
        "controller": str(config.get("user.runner-controller-id") or ""),
        "pool": str(config.get("user.runner-pool-id") or ""),
        "reason": reason,
        "instance": redacted_instance(meta),
        "state": state if state is not None else {"not_read": state_note},
        "install_status": [_text(line) for line in status_lines(log)],
        "cloud_init_output": _log_section(log, evidence.log_note, evidence.complete),
        "console": _log_section(console, console_note, len(console) < MAX_CONSOLE_BYTES),
    }


def redacted_instance(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The instance's description without anything GARM or a pool gave it (see the keep lists)."""
    config = meta.get("config") or {}
    kept = {
        key: value
        for key, value in config.items()
        if key in KEPT_CONFIG_KEYS or key.startswith(KEPT_CONFIG_PREFIXES)
    }
    out = {field: meta[field] for field in KEPT_INSTANCE_FIELDS if field in meta}
    out["config"] = kept
    out["config_dropped"] = sorted(key for key in config if key not in kept)
    return out


def _log_section(data: bytes, note: str, complete: bool) -> dict[str, Any]:
    tail = data[-TAIL_BYTES:]
    if len(data) > TAIL_BYTES:
        tail = tail[tail.find(b"\n") + 1 :]  # start at a line
    return {
        "bytes_read": len(data),
        "complete": complete and not note,
        "note": note,
        "tail": _text(tail),
    }


def _text(data: bytes) -> str:
    # Kept as text with every control character intact: they are escaped when shown.
    return redact_secrets(data.decode("utf-8", "replace"))


def redact_secrets(text: str) -> str:
    """text with bearer tokens, JWTs and --token arguments replaced by *** (trace lines)."""
    import re

    text = re.sub(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", "***", text)
    text = re.sub(r"(?i)(bearer\s+)[^\s'\"]+", r"\1***", text)
    return re.sub(r"(?i)(--token[\s=]+|token=)[^\s'\"&]+", r"\1***", text)


def _stamp(when: float, fmt: str) -> str:
    return time.strftime(fmt, time.gmtime(when))


def file_name(name: str, when: float) -> str:
    """The post-mortem file name of instance name saved at when (sorts by time per name)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "_" for c in name[:63])
    return f"{safe}.{_stamp(when, '%Y%m%dT%H%M%SZ')}{SUFFIX}"


def save(config: Config, name: str, document: Mapping[str, Any]) -> str:
    """Write document compressed, mode 0600, into postmortem_dir; apply retention; its path."""
    import gzip
    import os

    from ._native import json_dumps

    directory = config.postmortem_dir
    os.makedirs(directory, mode=0o700, exist_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        final = file_name(name, time.time())
        temporary = f".{final}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)  # fmt: skip
        try:
            os.write(fd, gzip.compress(json_dumps(document), mtime=0))
        finally:
            os.close(fd)
        os.rename(temporary, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        apply_retention(dir_fd, config.postmortem_keep, config.postmortem_max_age_days)
    finally:
        os.close(dir_fd)
    return os.path.join(directory, final)


def apply_retention(dir_fd: int, keep: int, max_age_days: int) -> None:
    """Remove post-mortems beyond the newest keep and older than max_age_days (0: no limit)."""
    import os

    entries = []
    with os.scandir(dir_fd) as scan:
        for entry in scan:
            if entry.name.endswith(SUFFIX) and entry.is_file(follow_symlinks=False):
                entries.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
    entries.sort(reverse=True)
    oldest = time.time() - max_age_days * 86400
    for index, (mtime, entry_name) in enumerate(entries):
        if (keep and index >= keep) or (max_age_days and mtime < oldest):
            try:
                os.unlink(entry_name, dir_fd=dir_fd)
            except FileNotFoundError:
                continue
