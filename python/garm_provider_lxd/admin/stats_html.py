"""`stats --html FILE`: one self-contained HTML page with inline SVG charts (no dependencies)."""

from __future__ import annotations

import os
import time
from html import escape
from typing import Any

from ..errors import InputError
from ..messages import for_terminal

WIDTH = 860
PLOT_HEIGHT = 260
MARGIN = 56
BAR_HEIGHT = 18
MAX_POOLS = 40
OK_COLOUR = "#2f7d32"
Point = tuple[float, float, bool]  # a CreateInstance: seconds since the epoch, wall, succeeded
FAILED_COLOUR = "#c62828"


def _shown(text: str) -> str:
    """Text from the log for HTML: control characters as escapes, markup escaped."""
    return escape(for_terminal(text))


def write_report(
    path: str, creates: list[Point], rows: list[dict[str, Any]], count: int, *, since: str
) -> None:
    """Write the report to path (mode 0600, replacing it: it quotes error lines)."""
    page = report_html(creates, rows, count, since)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(page)
    except OSError as exc:
        raise InputError(f"--html {path}: cannot write: {exc.strerror or exc}") from None


def report_html(creates: list[Point], rows: list[dict[str, Any]], count: int, since: str) -> str:
    """The whole page: create latency over time, failures per pool, the summary table."""
    window = f"last {escape(since)}" if since else "whole log"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<title>garm-provider-lxd stats</title>",
            "<style>body{font:14px sans-serif;margin:24px;color:#222}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
            "td.n{text-align:right}svg text{font:11px sans-serif}</style></head><body>",
            f"<h1>garm-provider-lxd: {count} commands ({window})</h1>",
            f"<p>Generated {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.</p>",
            "<h2>CreateInstance wall time</h2>",
            latency_svg(creates),
            "<h2>CreateInstance and DeleteInstance per pool</h2>",
            pools_svg(rows),
            "<h2>Summary</h2>",
            summary_table(rows),
            "</body></html>",
        ]
    )


def latency_svg(points: list[Point]) -> str:
    """A scatter of (time, seconds, succeeded): green for success, red for failure."""
    height = PLOT_HEIGHT + 2 * MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             'role="img" aria-label="CreateInstance wall time over time">']  # fmt: skip
    if not points:
        parts.append(f'<text x="{MARGIN}" y="{MARGIN}">no CreateInstance in the window</text>')
        return "".join([*parts, "</svg>"])
    first = min(p[0] for p in points)
    span = max(max(p[0] for p in points) - first, 1.0)
    top = max(max(p[1] for p in points), 0.001) * 1.1
    plot_w = WIDTH - 2 * MARGIN

    def x(at: float) -> float:
        return MARGIN + (at - first) / span * plot_w

    def y(seconds: float) -> float:
        return MARGIN + PLOT_HEIGHT - seconds / top * PLOT_HEIGHT

    parts.append(f'<line x1="{MARGIN}" y1="{y(0):.1f}" x2="{WIDTH - MARGIN}" y2="{y(0):.1f}" '
                 'stroke="#888"/>')  # fmt: skip
    parts.append(f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{y(0):.1f}" stroke="#888"/>')
    for step in range(5):
        value = top * step / 4
        parts.append(f'<text x="{MARGIN - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
                     f"{value:.2f} s</text>")  # fmt: skip
    for at, label in ((first, "start"), (first + span, "end")):
        stamp = time.strftime("%m-%d %H:%M", time.gmtime(at))
        parts.append(f'<text x="{x(at):.1f}" y="{y(0) + 16:.1f}" text-anchor="middle">'
                     f"{stamp} ({label})</text>")  # fmt: skip
    for at, seconds, ok in points:
        colour = OK_COLOUR if ok else FAILED_COLOUR
        parts.append(f'<circle cx="{x(at):.1f}" cy="{y(seconds):.1f}" r="3" fill="{colour}">'
                     f"<title>{seconds:.2f} s</title></circle>")  # fmt: skip
    parts.append(f'<text x="{WIDTH - MARGIN}" y="{MARGIN - 12}" text-anchor="end">'
                 f'<tspan fill="{OK_COLOUR}">● succeeded</tspan> '
                 f'<tspan fill="{FAILED_COLOUR}">● failed</tspan></text>')  # fmt: skip
    return "".join([*parts, "</svg>"])


def pools_svg(rows: list[dict[str, Any]]) -> str:
    """Horizontal bars per pool and command: succeeded (green) and failed (red) counts."""
    bars = [r for r in rows if r["command"] in ("CreateInstance", "DeleteInstance")][:MAX_POOLS]
    height = MARGIN + max(len(bars), 1) * (BAR_HEIGHT + 6) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             'role="img" aria-label="commands and failures per pool">']  # fmt: skip
    if not bars:
        parts.append(f'<text x="{MARGIN}" y="{MARGIN}">no CreateInstance or DeleteInstance</text>')
        return "".join([*parts, "</svg>"])
    label_w = 330
    most = max(r["count"] for r in bars)
    scale = (WIDTH - label_w - 80) / most
    for index, row in enumerate(bars):
        top = 20 + index * (BAR_HEIGHT + 6)
        ok = row["count"] - row["failures"]
        label = f"{row['pool'] or '-'} · {row['command'].replace('Instance', '')}"
        parts.append(f'<text x="{label_w - 8}" y="{top + 13}" text-anchor="end">'
                     f"{_shown(label[:60])}</text>")  # fmt: skip
        parts.append(f'<rect x="{label_w}" y="{top}" width="{ok * scale:.1f}" '
                     f'height="{BAR_HEIGHT}" fill="{OK_COLOUR}"/>')  # fmt: skip
        parts.append(f'<rect x="{label_w + ok * scale:.1f}" y="{top}" '
                     f'width="{row["failures"] * scale:.1f}" height="{BAR_HEIGHT}" '
                     f'fill="{FAILED_COLOUR}"/>')  # fmt: skip
        not_up = f", {row['did_not_come_up']} did not come up" if row.get("did_not_come_up") else ""
        parts.append(f'<text x="{label_w + row["count"] * scale + 6:.1f}" y="{top + 13}">'
                     f"{ok} ok, {row['failures']} failed{not_up}</text>")  # fmt: skip
    return "".join([*parts, "</svg>"])


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The summary rows as an HTML table (every value from the log escaped)."""
    head = (
        "<table><tr><th>command</th><th>pool</th><th>count</th><th>failed</th><th>p50 s</th>"
        "<th>p90 s</th><th>p99 s</th><th>most common failures</th></tr>"
    )
    body = []
    for row in rows:
        reasons = "<br>".join(
            [f"{count} &times; {_shown(text)}" for text, count in row["reasons"]]
            + [f"{count} &times; did not come up: {_shown(text)}"
               for text, count in row.get("not_up_reasons", [])]
        )  # fmt: skip
        wall = row["wall"]
        body.append(
            f"<tr><td>{_shown(row['command'])}</td><td>{_shown(row['pool'] or '-')}</td>"
            f'<td class="n">{row["count"]}</td><td class="n">{row["failures"]}</td>'
            f'<td class="n">{wall["p50"]:.3f}</td><td class="n">{wall["p90"]:.3f}</td>'
            f'<td class="n">{wall["p99"]:.3f}</td><td>{reasons}</td></tr>'
        )
    return head + "".join(body) + "</table>"
