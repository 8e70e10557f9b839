"""Timings of the end-to-end scenarios, written as a Markdown table (results, never asserts)."""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Iterable
from pathlib import Path

RESULTS_PATH = Path(__file__).resolve().parents[2] / "benches" / "results" / "e2e.md"


@dataclasses.dataclass(frozen=True)
class Timing:
    """One runner: seconds from CreateInstance start to the provider's return and to idle."""

    scenario: str
    runner: str
    to_return: float
    to_final: float | None
    final: str


def _seconds(values: Iterable[float | None]) -> str:
    found = [v for v in values if v is not None]
    if not found:
        return "-"
    if len(found) == 1:
        return f"{found[0]:.1f}"
    return f"{statistics.median(found):.1f} (max {max(found):.1f})"


def render(rows: list[Timing]) -> str:
    """The Markdown report: one line per scenario, in the order they ran."""
    scenarios = list(dict.fromkeys(row.scenario for row in rows))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# End-to-end timings",
        "",
        "Written by `python -m pytest -m e2e` (tests/test_e2e.py) from its last run; see",
        "docs/e2e.md. Seconds measured from the start of CreateInstance (the provider process",
        "started the way GARM starts it) to the provider's return and to the runner's final",
        "status callback at the fake GARM server. Several runners: median (max).",
        "",
        f"Machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; run {when}; load average at the end "
        f"{os.getloadavg()[0]:.1f} (other work on the machine inflates these numbers).",
        "",
        "| scenario | runners | create → provider returns (s) | create → final status (s) "
        "| final |",
        "|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        mine = [row for row in rows if row.scenario == scenario]
        finals = ", ".join(sorted({row.final for row in mine}))
        lines.append(
            f"| {scenario} | {len(mine)} | {_seconds(r.to_return for r in mine)} "
            f"| {_seconds(r.to_final for r in mine)} | {finals} |"
        )
    return "\n".join(lines) + "\n"


def write_results(rows: list[Timing], path: Path = RESULTS_PATH) -> None:
    """Write the report (atomically) when there is anything to report.

    Sections (`## ` headings) other benchmarks keep in the same file are carried over.
    """
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = ""
    if path.exists():
        old = path.read_text()
        start = old.find("\n## ")
        kept = old[start:] if start >= 0 else ""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(rows) + kept)
    tmp.replace(path)


def write_section(heading: str, body: str, path: Path = RESULTS_PATH) -> None:
    """Put `## heading` + body into the report, replacing that section if it is there."""
    text = path.read_text() if path.exists() else "# End-to-end timings\n"
    mark = f"\n## {heading}\n"
    start = text.find(mark)
    if start >= 0:
        end = text.find("\n## ", start + len(mark))
        text = text[:start] + (text[end:] if end >= 0 else "\n")
    text = text.rstrip("\n") + "\n" + mark + "\n" + body.rstrip("\n") + "\n"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
