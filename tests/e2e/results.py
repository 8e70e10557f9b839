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
    """Write the report (atomically) when there is anything to report."""
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(rows))
    tmp.replace(path)
