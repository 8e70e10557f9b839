"""`garm-provider-lxd stats`: counts, failures and latencies read back from the command record."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import IO, TYPE_CHECKING, Any

from ..errors import EXIT_OK, InputError
from ..messages import for_terminal

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..config import Config

TIMED_COMMANDS = ("CreateInstance", "DeleteInstance")
QUANTILES = (0.5, 0.9, 0.99)
TOP_REASONS = 3
MAX_REASON_CHARS = 160
MAX_LINE_BYTES = 64 << 10  # a line of ours is < 1 KB: longer ones are not ours
METRIC = "garm_provider_lxd"


def log_files(path: str, keep: int) -> list[str]:
    """The command log and its rotated copies, oldest first."""
    rotated = [f"{path}.{index}" for index in range(keep, 0, -1)]
    return [name for name in (*rotated, path) if os.path.isfile(name)]


def read_records(
    paths: list[str], since: float | None, pool: str
) -> tuple[list[dict[str, Any]], int]:
    """(records newer than since and of pool, number of lines that were not records)."""
    records: list[dict[str, Any]] = []
    bad = 0
    for path in paths:
        with open(path, "rb") as stream:
            for line in _lines(stream):
                record = _record(line)
                if record is None:
                    bad += 1
                    continue
                if pool and record.get("pool") != pool:
                    continue
                if since is not None and _epoch(record.get("time")) < since:
                    continue
                records.append(record)
    return records, bad


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The stream's lines; one longer than MAX_LINE_BYTES is yielded cut (and then refused)."""
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                continue  # skip to the end of the overlong line, in bounded pieces
        yield line


def _record(line: bytes) -> dict[str, Any] | None:
    if len(line) > MAX_LINE_BYTES or not line.endswith(b"\n"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("command"), str):
        return None
    if not isinstance(value.get("wall"), int | float) or not isinstance(value.get("exit"), int):
        return None
    return value


def _epoch(stamp: object) -> float:
    """Seconds since the epoch of a record's time (UTC, ISO 8601 with Z); 0 when unreadable."""
    if not isinstance(stamp, str) or not stamp.endswith("Z"):
        return 0.0
    import calendar

    try:
        whole, _, fraction = stamp[:-1].partition(".")
        parsed = time.strptime(whole, "%Y-%m-%dT%H:%M:%S")
        return calendar.timegm(parsed) + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)
    except ValueError:
        return 0.0


def percentile(values: list[float], quantile: float) -> float:
    """The nearest-rank percentile of values (sorted or not); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * quantile // 1))  # ceil without math
    return float(ordered[int(rank) - 1])


def reason(record: dict[str, Any]) -> str:
    """A failure's error line with its instance name replaced, so equal failures group."""
    text = str(record.get("error") or f"exit {record.get('exit')}")
    instance = str(record.get("instance") or "")
    if instance:
        text = text.replace(instance, "<instance>")
    return text[:MAX_REASON_CHARS]


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (command, pool): counts, failures, top reasons and wall-time percentiles."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        key = (str(record["command"]), str(record.get("pool") or ""))
        groups.setdefault(key, []).append(record)
    rows = []
    for (command, pool), group in sorted(groups.items()):
        # Exit 30 is "not found": success for DeleteInstance, an answer for the others.
        failed = [r for r in group if r["exit"] not in (0, 30)]
        walls = [float(r["wall"]) for r in group]
        # DeleteInstance of a runner that did not come up (a post-mortem was taken): the delete
        # succeeded, the runner had failed.
        not_up = [str(r["did_not_come_up"])[:MAX_REASON_CHARS] for r in group
                  if r.get("did_not_come_up")]  # fmt: skip
        rows.append(
            {
                "command": command,
                "pool": pool,
                "count": len(group),
                "failures": len(failed),
                "reasons": Counter(reason(r) for r in failed).most_common(TOP_REASONS),
                "did_not_come_up": len(not_up),
                "not_up_reasons": Counter(not_up).most_common(TOP_REASONS),
                "wall": {f"p{int(q * 100)}": round(percentile(walls, q), 3) for q in QUANTILES},
                "lxd_p50": round(percentile([float(r.get("lxd") or 0) for r in group], 0.5), 3),
            }
        )
    return rows


def run_stats(
    config: Config,
    out: IO[str],
    *,
    since: str = "",
    pool: str = "",
    as_json: bool = False,
    prometheus: bool = False,
    html: str = "",
) -> int:
    """Print the command record's summary (text, JSON or node_exporter textfile); write HTML."""
    if not config.command_log:
        raise InputError("the config sets no [diagnostics] command_log: nothing to read")
    window = _since(since)
    paths = log_files(config.command_log, config.command_log_keep)
    if not paths:
        raise InputError(f"command log {config.command_log}: no such file (yet)")
    try:
        records, bad = read_records(paths, window, pool)
    except OSError as exc:
        raise InputError(f"command log {config.command_log}: {exc.strerror or exc}") from None
    rows = summarize(records)
    if html:
        from .stats_html import write_report

        creates = [
            (_epoch(r.get("time")), float(r["wall"]), r["exit"] == 0)
            for r in records
            if r["command"] == "CreateInstance"
        ]
        write_report(html, creates, rows, len(records), since=since)
    if as_json:
        out.write(json.dumps({"records": len(records), "unreadable_lines": bad, "rows": rows}))
        out.write("\n")
    elif prometheus:
        out.write(prometheus_text(rows))
    else:
        out.write(text_report(rows, len(records), bad, since))
    out.flush()
    return EXIT_OK


def _since(text: str) -> float | None:
    if not text:
        return None
    from .prune import parse_duration

    try:
        return time.time() - parse_duration(text)
    except InputError:
        raise InputError(f"--since: {text!r} is not a duration (e.g. 90s, 30m, 2h, 1d)") from None


def text_report(rows: list[dict[str, Any]], records: int, bad: int, since: str) -> str:
    """The summary as a table for a terminal (values from the log escaped)."""
    window = f" in the last {since}" if since else ""
    lines = [f"{records} commands{window}" + (f" ({bad} unreadable lines skipped)" if bad else "")]
    header = f"{'command':<22} {'pool':<38} {'count':>6} {'failed':>6} "
    lines.append(header + f"{'p50 s':>8} {'p90 s':>8} {'p99 s':>8} {'lxd p50':>8}")
    for row in rows:
        wall = row["wall"]
        lines.append(
            f"{for_terminal(row['command'])[:22]:<22} {for_terminal(row['pool'] or '-')[:38]:<38} "
            f"{row['count']:>6} {row['failures']:>6} {wall['p50']:>8.3f} {wall['p90']:>8.3f} "
            f"{wall['p99']:>8.3f} {row['lxd_p50']:>8.3f}"
        )
        for text, count in row["reasons"]:
            lines.append(f"    {count:>5} x {for_terminal(text)}")
        if row["did_not_come_up"]:
            lines.append(f"    {row['did_not_come_up']:>5} runners did not come up:")
            for text, count in row["not_up_reasons"]:
                lines.append(f"    {count:>5} x {for_terminal(text)}")
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    # Control characters as visible escapes first (a log line may have been tampered with).
    shown = for_terminal(value)
    return shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(rows: list[dict[str, Any]]) -> str:
    """The summary in node_exporter's textfile format (gauges over the window read)."""
    out = [
        f"# HELP {METRIC}_commands GARM commands in the window read, by command and pool.",
        f"# TYPE {METRIC}_commands gauge",
    ]
    out += [
        f'{METRIC}_commands{{command="{_label(r["command"])}",pool="{_label(r["pool"])}"}} '
        f"{r['count']}"
        for r in rows
    ]
    out += [
        f"# HELP {METRIC}_command_failures Failed GARM commands (exit not 0 or 30) in the window.",
        f"# TYPE {METRIC}_command_failures gauge",
    ]
    out += [
        f'{METRIC}_command_failures{{command="{_label(r["command"])}",pool="{_label(r["pool"])}"}}'
        f" {r['failures']}"
        for r in rows
    ]
    out += [
        f"# HELP {METRIC}_command_wall_seconds Wall time of GARM commands, by quantile.",
        f"# TYPE {METRIC}_command_wall_seconds gauge",
    ]
    out += [
        f"# HELP {METRIC}_runners_not_up Runners deleted after they did not come up (a "
        "post-mortem was taken), by pool.",
        f"# TYPE {METRIC}_runners_not_up gauge",
    ]
    out += [
        f'{METRIC}_runners_not_up{{pool="{_label(r["pool"])}"}} {r["did_not_come_up"]}'
        for r in rows
        if r["command"] == "DeleteInstance"
    ]
    for row in rows:
        labels = f'command="{_label(row["command"])}",pool="{_label(row["pool"])}"'
        for quantile in QUANTILES:
            value = row["wall"][f"p{int(quantile * 100)}"]
            out.append(f'{METRIC}_command_wall_seconds{{{labels},quantile="{quantile}"}} {value}')
    return "\n".join(out) + "\n"
