"""Start-up cost of the provider's modules, from `python -X importtime` in fresh processes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections import defaultdict

from proc import median, percentile

# What a GARM command can import, lightest first; a module that does not exist is skipped.
MODULES = (
    "garm_provider_lxd",
    "garm_provider_lxd.errors",
    "garm_provider_lxd.cli",
    "garm_provider_lxd._native",
    "garm_provider_lxd.record",
    "garm_provider_lxd.config",
    "garm_provider_lxd.lxd",
    "garm_provider_lxd.images",
    "garm_provider_lxd.specs",
    "garm_provider_lxd.bootstrap",
    "garm_provider_lxd.instances",
    "garm_provider_lxd.userdata",
    "garm_provider_lxd.gotemplate",
    "garm_provider_lxd.provider",
    "json",
    "typing",
    "dataclasses",
    "tomllib",
    "orjson",
    "jinja2",
    "pylxd",
)


@dataclasses.dataclass
class ImportTime:
    """Medians of one module imported alone into a fresh interpreter."""

    module: str
    cumulative_us: list[int]
    self_top: list[tuple[str, int]]

    @property
    def p50_ms(self) -> float:
        """Median cumulative import time in milliseconds."""
        return median([float(v) for v in self.cumulative_us]) / 1000


def parse(stderr: str) -> dict[str, tuple[int, int]]:
    """Return {module: (self us, cumulative us)} from -X importtime output."""
    result: dict[str, tuple[int, int]] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        result[name.strip()] = (int(own), int(cumulative))
    return result


def startup_modules(python: str) -> set[str]:
    """Return the modules the interpreter imports before running any code (site and co.)."""
    done = subprocess.run(
        [python, "-X", "importtime", "-c", "pass"], env={}, capture_output=True, text=True
    )
    return set(parse(done.stderr))


def measure(python: str, module: str, reps: int) -> ImportTime | None:
    """Import module alone reps times (fresh process, empty env); None if it is absent."""
    startup = startup_modules(python)
    cumulative: list[int] = []
    own: defaultdict[str, list[int]] = defaultdict(list)
    for _ in range(reps):
        done = subprocess.run(
            [python, "-X", "importtime", "-c", f"import {module}"],
            env={},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return None
        times = parse(done.stderr)
        cumulative.append(times[module][1])
        for name, (self_us, _) in times.items():
            if name not in startup:
                own[name].append(self_us)
    top = sorted(
        ((n, int(median([float(x) for x in v]))) for n, v in own.items()), key=lambda t: -t[1]
    )
    return ImportTime(module, cumulative, top[:8])


def table(python: str, reps: int) -> tuple[list[str], list[ImportTime]]:
    """Return the markdown table of import times and the measurements behind it."""
    results = [r for m in MODULES if (r := measure(python, m, reps)) is not None]
    lines = [
        "| module (imported alone) | p50 | p90 | heaviest modules it pulls in (self time, p50) |",
        "|---|--:|--:|---|",
    ]
    for r in results:
        heavy = ", ".join(f"{n} {us / 1000:.1f}" for n, us in r.self_top[:5] if us >= 300)
        p90 = percentile([float(v) for v in r.cumulative_us], 90) / 1000
        lines.append(f"| `{r.module}` | {r.p50_ms:.1f} ms | {p90:.1f} ms | {heavy} |")
    return lines, results


if __name__ == "__main__":
    print("\n".join(table(sys.executable, 5)[0]))
