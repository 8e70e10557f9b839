"""Start-up cost as whole processes: what importing the command path costs over `python -c pass`.

Each case is a fresh interpreter with an empty environment, measured by `benches/spawn.c`
(wall, CPU, peak RSS); the cases take turns, round after round, so they share the load.
"""

from __future__ import annotations

import sys

from proc import median, run

COMMAND_PATH = (
    "garm_provider_lxd.cli, garm_provider_lxd.config, garm_provider_lxd.specs, "
    "garm_provider_lxd.provider, garm_provider_lxd.lxd, garm_provider_lxd._native"
)

# (label, code). The stdlib rows are what the command path avoids importing, for scale.
CASES = (
    ("`python -c pass` (interpreter floor)", "pass"),
    ("`import garm_provider_lxd.cli` (all GetVersion needs)", "import garm_provider_lxd.cli"),
    ("imports of every LXD command (cli, config, specs, provider, lxd, `_native`)",
     f"import {COMMAND_PATH}"),
    ("for scale: `import json`", "import json"),
    ("for scale: `import typing`", "import typing"),
    ("for scale: `import tomllib`", "import tomllib"),
    ("for scale: `import http.client` (stdlib HTTP; imports ssl)", "import http.client"),
    ("for scale: `import requests`", "import requests"),
    ("for scale: `import jinja2` (CreateInstance with the default script)", "import jinja2"),
    ("for scale: `import pylxd` (operator commands only)", "import pylxd"),
)  # fmt: skip


def table(python: str, rounds: int) -> tuple[list[str], dict[str, list[float]]]:
    """Return the markdown table of start-up costs and the wall times behind it."""
    samples: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _ in CASES}
    for round_ in range(rounds + 1):
        for label, code in CASES:
            sample = run([python, "-c", code], env={})
            if sample.returncode != 0:
                raise RuntimeError(f"{code!r} failed: {sample.stderr.decode(errors='replace')}")
            if round_:  # the first round warms the page cache
                samples[label].append((sample.wall, sample.cpu, sample.rss_mb))
    floor = median([wall for wall, _, _ in samples[CASES[0][0]]])
    lines = [
        "| process | wall p50 | over the floor | CPU p50 | peak RSS p50 |",
        "|---|--:|--:|--:|--:|",
    ]
    for label, _ in CASES:
        wall = median([s[0] for s in samples[label]])
        cpu = median([s[1] for s in samples[label]])
        rss = median([s[2] for s in samples[label]])
        extra = "-" if label == CASES[0][0] else f"{(wall - floor) * 1000:+.1f} ms"
        lines.append(
            f"| {label} | {wall * 1000:.1f} ms | {extra} | {cpu * 1000:.1f} ms | {rss:.1f} MB |"
        )
    return lines, {label: [s[0] for s in values] for label, values in samples.items()}


if __name__ == "__main__":
    print("\n".join(table(sys.executable, 10)[0]))
