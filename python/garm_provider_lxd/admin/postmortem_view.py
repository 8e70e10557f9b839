"""Reading a saved post-mortem back (`logs NAME` once the instance is gone)."""

from __future__ import annotations

import gzip
import io
import json
import os
from typing import IO, Any

from ..errors import EXIT_OK, ProviderError
from ..messages import for_terminal
from ..postmortem import SUFFIX

MAX_COMPRESSED_BYTES = 16 << 20  # a post-mortem is < 200 KB; refuse anything far bigger
MAX_JSON_BYTES = 64 << 20


def newest_postmortem(directory: str, name: str) -> str | None:
    """Path of the newest post-mortem of instance name in directory, None when there is none."""
    prefix = f"{name}."
    try:
        names = [
            entry.name
            for entry in os.scandir(directory)
            if entry.name.startswith(prefix)
            and entry.name.endswith(SUFFIX)
            and entry.name[len(prefix) : -len(SUFFIX)].endswith("Z")
            and entry.is_file(follow_symlinks=False)
        ]
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProviderError(f"postmortem_dir {directory}: {exc.strerror or exc}") from None
    return os.path.join(directory, max(names)) if names else None


def load_postmortem(path: str) -> dict[str, Any]:
    """The post-mortem document at path (a regular file, size-bounded)."""
    from ..files import read_regular_file

    raw = read_regular_file(path, f"post-mortem {path}", MAX_COMPRESSED_BYTES)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(MAX_JSON_BYTES + 1)
        document = json.loads(data) if len(data) <= MAX_JSON_BYTES else None
    except (OSError, EOFError, ValueError):
        document = None
    if not isinstance(document, dict):
        raise ProviderError(f"post-mortem {path}: not a post-mortem (corrupt or not ours)")
    return document


def show_postmortem(path: str, out: IO[str], lines: int) -> int:
    """Print a saved post-mortem as `logs` prints a live runner (escaped, last lines)."""
    document = load_postmortem(path)

    def text(key: str) -> str:
        return for_terminal(str(document.get(key) or "-"))

    out.write(
        f"== {text('name')} is gone; post-mortem saved {text('saved_at')} (project "
        f"{text('project')}, controller {text('controller')}, pool {text('pool')})\n"
        f"== file: {for_terminal(path)}\n"
        f"== why it was kept: {text('reason')}\n"
    )
    instance = _table(document.get("instance"))
    status = _table(document.get("state")).get("status")
    out.write(
        f"== instance: {for_terminal(str(instance.get('status') or status or '-'))}, "
        f"created {for_terminal(str(instance.get('created_at') or '-'))}, image "
        f"{for_terminal(str(_table(instance.get('config')).get('image.description') or '-'))}\n"
    )
    out.write("== install status\n")
    for line in document.get("install_status") or ["(none)"]:
        out.write(for_terminal(str(line)) + "\n")
    for key, title in (("cloud_init_output", "/var/log/cloud-init-output.log"),
                       ("console", "console log")):  # fmt: skip
        _section(out, title, document.get(key), lines)
    out.flush()
    return EXIT_OK


def _table(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _section(out: IO[str], title: str, section: object, lines: int) -> None:
    if not isinstance(section, dict):
        out.write(f"== {title}: not in the post-mortem\n")
        return
    note = str(section.get("note") or "")
    if note:
        out.write(f"== {title}: {for_terminal(note)}\n")
        return
    shown = str(section.get("tail") or "").split("\n")
    if shown and not shown[-1]:
        shown.pop()
    shown = shown[-lines:]
    read = section.get("bytes_read")
    cut = "" if section.get("complete") else "; stopped reading at the size bound"
    out.write(f"== {title} (last {len(shown)} lines, {read} bytes read{cut})\n")
    for line in shown:
        out.write(for_terminal(line.rstrip("\r"), multiline=True) + "\n")
