"""Turn benchmark rows into commands.md, list_scaling.png and a JSON of the raw samples."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from harness import Budget, Row
from proc import median, percentile

GO_LIST_1004_S = 6.5


def _ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.0f} ms"


def _s(seconds: float) -> str:
    if seconds != seconds:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def overhead(row: Row) -> float:
    """Median over rounds of provider wall minus raw-LXD time of the same round."""
    if not row.floor or len(row.floor) != len(row.samples):
        return float("nan")
    return median([s.wall - f for s, f in zip(row.samples, row.floor, strict=True)])


def checks(row: Row) -> list[tuple[str, bool]]:
    """Return (budget text, met) for every budget of the row, judged on medians."""
    b = row.budget
    wall = [s.wall for s in row.samples]
    result: list[tuple[str, bool]] = []
    if b.overhead_ms is not None and row.floor:
        overhead_s = overhead(row)
        result.append((f"overhead ≤ {b.overhead_ms:.0f} ms", overhead_s * 1000 <= b.overhead_ms))
    if b.wall_s is not None:
        result.append((f"wall ≤ {b.wall_s:g} s", median(wall) <= b.wall_s))
    if b.cpu_ms is not None:
        cpu = median([s.cpu for s in row.samples])
        result.append((f"CPU ≤ {b.cpu_ms:.0f} ms", cpu * 1000 <= b.cpu_ms))
    if b.rss_mb is not None:
        rss = median([s.rss_mb for s in row.samples])
        result.append((f"RSS ≤ {b.rss_mb:.0f} MB", rss <= b.rss_mb))
    return result


def command_table(rows: list[Row]) -> list[str]:
    """Return the markdown table of the per-command rows."""
    lines = [
        "| command | n | wall p50 | wall p90 | raw LXD p50 | overhead p50 | CPU p50 | CPU p90 "
        "| peak RSS p50 | Go wall / CPU / RSS | budgets (on p50) | |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|:-:|",
    ]
    for row in rows:
        wall = [s.wall for s in row.samples]
        cpu = [s.cpu for s in row.samples]
        rss = [s.rss_mb for s in row.samples]
        floor = median(row.floor) if row.floor else float("nan")
        marks = checks(row)
        verdict = "✓" if all(ok for _, ok in marks) else "✗"
        budget = ", ".join(text if ok else f"**{text}** ✗" for text, ok in marks)
        lines.append(
            f"| {row.label} | {len(wall)} | {_s(median(wall))} | {_s(percentile(wall, 90))} "
            f"| {_s(floor)} | {_ms(overhead(row))} | {_ms(median(cpu))} "
            f"| {_ms(percentile(cpu, 90))} "
            f"| {median(rss):.1f} MB | {row.go or '-'} | {budget or '-'} "
            f"| {verdict if marks else ''} |"
        )
    return lines


def remove_all_table(remove: Row, seq: Row, raw: Row) -> list[str]:
    """Return the RemoveAll-versus-sequential-deletes table."""
    rm_wall = median([s.wall for s in remove.samples])
    seq_wall = median([s.wall for s in seq.samples])
    ratio = seq_wall / rm_wall if rm_wall else float("nan")
    raw_wall = median([s.wall for s in raw.samples]) if raw.samples else float("nan")
    return [
        "| what | n | wall p50 | CPU p50 | peak RSS p50 |",
        "|---|--:|--:|--:|--:|",
        f"| {remove.label} (one process) | {len(remove.samples)} | {_s(rm_wall)} "
        f"| {_ms(median([s.cpu for s in remove.samples]))} "
        f"| {median([s.rss_mb for s in remove.samples]):.1f} MB |",
        f"| {seq.label} (sum of processes) | {len(seq.samples)} | {_s(seq_wall)} "
        f"| {_ms(median([s.cpu for s in seq.samples]))} | max {seq.samples[0].rss_mb:.1f} MB |",
        f"| {raw.label} (harness, floor) | {len(raw.samples)} | {_s(raw_wall)} | - | - |",
        "",
        f"Speed-up of RemoveAllInstances over sequential deletes: **{ratio:.1f}x** "
        f"(budget ≥ 4x: {'✓' if ratio >= 4 else '✗'}).",
    ]


def write_markdown(path: Path, meta: dict[str, Any], rows: list[Row], tail: list[Row]) -> None:
    """Write commands.md."""
    lines = [
        "# Provider commands, whole process",
        "",
        f"Measured {meta['date']} on {meta['machine']}; LXD {meta['lxd']}; "
        f"provider {meta['provider_version']} built from {meta.get('build', 'unknown')} "
        f"({meta['python']}); mode: {meta['mode']}.",
        "",
        "Each provider run is a new process started exactly as GARM starts it: the console script "
        "with only `GARM_*` variables (no PATH, no HOME) and stdin a pipe. *wall* is spawn to "
        "reap; *CPU* is user+sys of the child (`wait4`); *peak RSS* is its `ru_maxrss`. "
        "*raw LXD* is the same LXD requests sent by the harness itself over the unix socket "
        "(a new connection each time), in the same round as the provider run, with the two "
        "taking turns to go first; *overhead* is the median over rounds of (provider wall - "
        "raw LXD), i.e. what the provider adds on top of the server's own time. The machine "
        "is shared with other builds: read medians and ratios, not single runs. The Go column "
        "is the reference provider measured on the same kind of machine and LXD (DESIGN §5).",
        "",
        *command_table(rows),
        "",
        "Raw LXD requests per row:",
        "",
        *[f"- {row.label}: {row.floor_what}" for row in rows if row.floor_what],
        "",
    ]
    if len(tail) == 3:
        lines += ["## RemoveAllInstances", "", *remove_all_table(*tail), ""]
    extra = [f"- {row.label}: {json.dumps(row.extra)}" for row in rows + tail if row.extra]
    if meta.get("populate"):
        lines += ["## Population (`benches/populate.py`)", ""]
        lines += [
            f"- to {p['target']:,}: created {p['created']:,}, started {p['started']}, "
            f"deleted {p['deleted']} in {p['seconds']:.1f} s"
            + (
                f"; {p['mem_per_running_mb']:.1f} MB MemAvailable per running container"
                if p.get("mem_per_running_mb")
                else ""
            )
            for p in meta["populate"]
        ]
        lines.append("")
    if extra:
        lines += ["## Details", "", *extra, ""]
    path.write_text("\n".join(lines))


def write_json(path: Path, meta: dict[str, Any], rows: list[Row]) -> None:
    """Write every raw sample (seconds, MB) with the run's metadata."""
    out = []
    for row in rows:
        item = dataclasses.asdict(row)
        item["samples"] = [s.public() for s in row.samples]
        out.append(item)
    path.write_text(json.dumps({"meta": meta, "rows": out}, indent=1) + "\n")


def plot_list_scaling(path: Path, rows: list[Row]) -> bool:
    """Plot ListInstances latency (p50, p10-p90) against the number of instances."""
    try:
        import matplotlib
    except ImportError:
        return False  # a benchmark-only dependency; the quick CI run goes without the plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lists = sorted(
        (r for r in rows if r.key.startswith("ListInstances@")), key=lambda r: r.extra["instances"]
    )
    if not lists:
        return False
    counts = [r.extra["instances"] for r in lists]
    walls = [[s.wall for s in r.samples] for r in lists]
    p50 = [median(w) for w in walls]
    low = [m - percentile(w, 10) for m, w in zip(p50, walls, strict=True)]
    high = [percentile(w, 90) - m for m, w in zip(p50, walls, strict=True)]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.errorbar(
        counts, p50, yerr=[low, high], marker="o", capsize=4, label="provider (p50, p10-p90)"
    )
    ax.plot(counts, [median(r.floor) for r in lists], marker="s", label="raw LXD requests (p50)")
    ax.plot([1004], [GO_LIST_1004_S], marker="x", ls="", ms=10, color="black", label="Go provider")
    ax.plot([1000, 5000], [0.5, 2.0], marker="v", ls="", ms=9, color="red", label="budget")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("instances in the project")
    ax.set_ylabel("ListInstances wall time, one pool (s)")
    ax.set_title("ListInstances: latency against instance count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def rebuild(json_path: Path) -> None:
    """Rewrite commands.md and list_scaling.png next to a commands.json."""
    from proc import Sample

    data = json.loads(json_path.read_text())
    rows = []
    for item in data["rows"]:
        samples = [Sample(returncode=0, **s) for s in item.pop("samples")]
        budget = Budget(**item.pop("budget"))
        rows.append(Row(samples=samples, budget=budget, **item))
    tail = [r for r in rows if r.key in ("RemoveAll", "SequentialDelete", "RawParallelDelete")]
    head = [r for r in rows if r not in tail]
    write_markdown(json_path.with_suffix(".md"), data["meta"], head, tail)
    plot_list_scaling(json_path.with_name("list_scaling.png"), head)


if __name__ == "__main__":
    import sys

    rebuild(Path(sys.argv[1]))
