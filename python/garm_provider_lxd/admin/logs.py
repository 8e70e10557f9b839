"""`garm-provider-lxd logs`: a runner's cloud-init output, install status and console log."""

from __future__ import annotations

from collections import deque
from typing import IO, TYPE_CHECKING, Any

from ..config import instance_projects
from ..errors import EXIT_OK, InputError, LxdError, NotFoundError, ProviderError
from ..instances import TAG_CONTROLLER, TAG_POOL, NotARunner, choose_runner, validate_instance_name
from ..messages import for_terminal
from ..postmortem import CLOUD_INIT_OUTPUT, STATUS_MARKERS
from .pylxd_client import connect, lxd_errors, project_api
from .terminal import decoded

if TYPE_CHECKING:
    import pylxd

    from ..config import Config
    from ..lxd import Lxd

DEFAULT_LINES = 100
MAX_LINES = 10_000
# Runner code writes these files: read only the last FILE_TAIL_BYTES of a file of the
# instance (over SFTP: nothing but a regular file is opened), at most MAX_DOWNLOAD_BYTES of the
# console log (a stream), keep only the tail, and cut every shown line.
FILE_TAIL_BYTES = 16 << 20
MAX_DOWNLOAD_BYTES = 64 << 20
MAX_TAIL_BYTES = 1 << 20
MAX_LINE_CHARS = 1000
MAX_STATUS_LINES = 50
# Deadline of the whole read of one file of the instance.
FILE_TIMEOUT = 30.0
_CHUNK = 64 << 10


class Tail:
    """The last lines of a stream read with bounded memory, and its status lines."""

    def __init__(self) -> None:
        self.kept = bytearray()
        self.size = 0
        self.truncated = False  # stopped at MAX_DOWNLOAD_BYTES
        self.skipped = 0  # bytes before the tail of a file that were not read
        self.statuses: deque[bytes] = deque(maxlen=MAX_STATUS_LINES)
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the stream."""
        self.size += len(chunk)
        self.kept += chunk
        if len(self.kept) > MAX_TAIL_BYTES:
            del self.kept[: len(self.kept) - MAX_TAIL_BYTES]
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()[-MAX_LINE_CHARS:]
        self._pick_statuses(lines)

    def close(self) -> None:
        """The stream ended: the last line needs no newline."""
        self._pick_statuses([self._partial])
        self._partial = b""

    def _pick_statuses(self, lines: list[bytes]) -> None:
        for line in lines:
            for marker in STATUS_MARKERS:
                start = line.find(marker)
                if start >= 0:
                    self.statuses.append(line[start : start + MAX_LINE_CHARS])

    def last_lines(self, count: int) -> list[str]:
        """The last count lines, each cut to MAX_LINE_CHARS and safe for a terminal."""
        lines = bytes(self.kept).split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        return [_shown(line) for line in lines[-count:]]


def read_tail(response: Any) -> Tail:
    """Read a streamed response into a Tail, never more than MAX_DOWNLOAD_BYTES."""
    tail = Tail()
    try:
        for chunk in response.iter_content(_CHUNK):
            tail.feed(chunk[: MAX_DOWNLOAD_BYTES - tail.size])
            if tail.size >= MAX_DOWNLOAD_BYTES:
                tail.truncated = True
                break
    finally:
        response.close()
    tail.close()
    return tail


def _shown(line: bytes) -> str:
    text = decoded(line[:MAX_LINE_CHARS].removesuffix(b"\r"))  # CRLF lines (consoles)
    return text + ("\u2026" if len(line) > MAX_LINE_CHARS else "")


class RunnerGone(ProviderError):
    """No instance of that name exists (any more)."""


def find_runner(client: pylxd.Client, config: Config, name: str) -> tuple[Any, str, dict[str, Any]]:
    """(project API, project, instance) of the runner name, of any controller, else an error."""
    from pylxd.exceptions import NotFound

    projects = instance_projects(config)
    found = []
    for project in projects:
        api = project_api(client, project)
        with lxd_errors(f"get instance {name}"):
            try:
                meta = api.instances[name].get().json()["metadata"]
            except NotFound:
                continue
        found.append(((api, project, meta), meta))
    try:
        # Any controller's runner, but only runners: `logs` must not read any instance's files.
        return choose_runner(name, projects, found, controller_id=None)
    except NotARunner as exc:
        raise ProviderError(f"{exc}; refusing") from None
    except NotFoundError as exc:
        raise RunnerGone(str(exc)) from None


def run_logs(config: Config, out: IO[str], *, name: str, lines: int = DEFAULT_LINES) -> int:
    """Print a runner's install status lines, cloud-init output and console log."""
    if not 1 <= lines <= MAX_LINES:
        raise InputError(f"--lines: must be between 1 and {MAX_LINES}")
    validate_instance_name(name)
    client = connect(config)
    try:
        api, project, instance = find_runner(client, config, name)
    except RunnerGone:
        # Gone: what DeleteInstance saved of it, if it did not come up.
        from .postmortem_view import newest_postmortem, show_postmortem

        saved = newest_postmortem(config.postmortem_dir, name) if config.postmortem_dir else None
        if saved is None:
            raise
        return show_postmortem(saved, out, lines)
    from ..lxd import Lxd

    node = api.instances[name]
    tags = instance.get("config") or {}
    status = str(instance.get("status") or "")
    output = _file_tail(Lxd(config).for_project(project), CLOUD_INIT_OUTPUT, name, status)
    console = _console_tail(node)
    out.write(
        f"== {name} (project {for_terminal(project or 'default')}, {for_terminal(status)}, "
        f"controller {for_terminal(str(tags.get(TAG_CONTROLLER)))}, pool "
        f"{for_terminal(str(tags.get(TAG_POOL) or '-'))})\n"
    )
    if output is None:
        out.write(f"== {CLOUD_INIT_OUTPUT}: not there (yet): cloud-init has not written it\n")
    else:
        out.write(f"== install status (lines of {CLOUD_INIT_OUTPUT})\n")
        for line in output.statuses or [b"(none)"]:
            out.write(_shown(line) + "\n")
        _write_section(out, CLOUD_INIT_OUTPUT, output, lines)
    if isinstance(console, str):
        out.write(f"== console log: not available ({for_terminal(console)})\n")
    else:
        _write_section(out, "console log", console, lines)
    out.flush()
    return EXIT_OK


def _write_section(out: IO[str], title: str, tail: Tail, lines: int) -> None:
    shown = tail.last_lines(lines)
    cut = f"; stopped reading at {MAX_DOWNLOAD_BYTES >> 20} MiB" if tail.truncated else ""
    if tail.skipped:
        cut = f"; the {tail.skipped} bytes before them not read"
    out.write(f"== {title} (last {len(shown)} lines, {tail.size} bytes read{cut})\n")
    for line in shown:
        out.write(line + "\n")


def _file_tail(lxd: Lxd, path: str, name: str, status: str) -> Tail | None:
    """The tail of a regular file in the instance, None when it does not exist."""
    from ..lxd import REGULAR_FILE

    try:
        kind, data, size = lxd.read_file_tail(name, path, FILE_TAIL_BYTES, FILE_TIMEOUT)
    except LxdError as exc:
        state = "" if status == "Running" else f" (it is {status})"
        raise LxdError(f"cannot read {path} from instance {name}{state}: {exc}") from None
    if kind is None:
        return None
    if kind != REGULAR_FILE:
        raise LxdError(f"{path} in instance {name} is {kind}, not a regular file; not read")
    tail = Tail()
    tail.feed(data)
    tail.skipped = max(0, size - len(data))
    tail.close()
    return tail


def _console_tail(node: Any) -> Tail | str:
    """The tail of the instance's console log, or why the server has none."""
    from pylxd.exceptions import LXDAPIException
    from requests import RequestException

    from ..messages import error_line

    try:
        response = node.console.get(is_api=False, stream=True)
        return read_tail(response)
    except (LXDAPIException, RequestException) as exc:
        return error_line(exc, 200)
