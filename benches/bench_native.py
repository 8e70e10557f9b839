"""Micro-benchmarks: `_native.provider_instances` against plain Python, and start-up costs.

    python benches/bench_native.py            # 10k and 50k instances; writes results/native.md
    python benches/bench_native.py --quick    # few repetitions, results to a temp dir

The Python baselines are the reference conversion of testdata/instances_reference.py (the field
rules of rust/src/instances.rs) with `json` and with `orjson`; every run asserts that all three
produce the same instances.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from garm_provider_lxd import __version__
from garm_provider_lxd._native import provider_instances

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testdata"))

import gen_instances
import importtime
import startup
from instances_reference import provider_instances as convert
from proc import median, percentile, write_results, wrote

HERE = Path(__file__).resolve().parent

Convert = Callable[[bytes, str, "str | None"], bytes]


def python_json(body: bytes, controller_id: str, pool_id: str | None) -> bytes:
    """Baseline: json.loads + filter + json.dumps."""
    items = json.loads(body)["metadata"]
    return json.dumps(convert(items, controller_id, pool_id), separators=(",", ":")).encode()


def python_orjson(body: bytes, controller_id: str, pool_id: str | None) -> bytes:
    """Baseline with the fastest JSON library on PyPI: orjson.loads + filter + orjson.dumps."""
    import orjson

    return orjson.dumps(convert(orjson.loads(body)["metadata"], controller_id, pool_id))


IMPLEMENTATIONS: dict[str, Convert] = {
    "Rust `_native.provider_instances`": provider_instances,
    "Python `json` + filter + `json.dumps`": python_json,
    "Python `orjson` + filter + `orjson.dumps`": python_orjson,
}


def time_case(body: bytes, controller: str, pool: str | None, reps: int) -> list[list[float]]:
    """Time every implementation reps times (interleaved); assert equal outputs."""
    outputs = [json.loads(impl(body, controller, pool)) for impl in IMPLEMENTATIONS.values()]
    assert all(o == outputs[0] for o in outputs[1:]), "implementations disagree"
    assert outputs[0], "the case selects no instance"
    times: list[list[float]] = [[] for _ in IMPLEMENTATIONS]
    for _ in range(reps):
        for slot, impl in zip(times, IMPLEMENTATIONS.values(), strict=True):
            begin = time.perf_counter()
            impl(body, controller, pool)
            slot.append(time.perf_counter() - begin)
    return times


def conversion_table(sizes: list[int], reps: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Run every case; return the markdown table and the raw samples."""
    controller = gen_instances.CONTROLLER_A
    pool = gen_instances.POOLS[controller][0]
    lines = [
        "| instances | recursion | body | selects | implementation | p50 | p90 | vs Rust |",
        "|--:|--:|--:|---|---|--:|--:|--:|",
    ]
    raw: list[dict[str, Any]] = []
    for n in sizes:
        for recursion in (1, 2):
            data = gen_instances.generate(n, recursion=recursion)
            body = json.dumps(data, separators=(",", ":")).encode()
            for label, pool_id in (("1 pool", pool), ("controller", None)):
                times = time_case(body, controller, pool_id, reps if n <= 10000 else reps // 2)
                selected = len(json.loads(provider_instances(body, controller, pool_id)))
                rust = median(times[0])
                for name, samples in zip(IMPLEMENTATIONS, times, strict=True):
                    lines.append(
                        f"| {n:,} | {recursion} | {len(body) / 1e6:.1f} MB "
                        f"| {label} ({selected:,}) | {name} | {median(samples) * 1000:.1f} ms "
                        f"| {percentile(samples, 90) * 1000:.1f} ms "
                        f"| {median(samples) / rust:.1f}x |"
                    )
                    raw.append(
                        {"n": n, "recursion": recursion, "select": label, "impl": name,
                         "body_bytes": len(body), "seconds": samples}
                    )  # fmt: skip
    return lines, raw


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, 1k and 10k")
    parser.add_argument("--out", type=Path, help="results directory (default: benches/results)")
    args = parser.parse_args()
    sizes, reps, import_reps = ([1000, 10000], 3, 3) if args.quick else ([10000, 50000], 11, 15)
    conversion, raw = conversion_table(sizes, reps)
    imports, measured = importtime.table(sys.executable, import_reps)
    processes, process_walls = startup.table(sys.executable, import_reps + 10)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = [
        "# Native instance conversion and start-up cost",
        "",
        f"Measured {date} on {os.cpu_count()} cores, Linux {platform.release()}; provider "
        f"{__version__}; {sys.executable} (Python {platform.python_version()}). "
        "Synthetic `GET /1.0/instances` bodies from `testdata/gen_instances.py` (LXD 5.0 shapes, "
        "two controllers, several pools, untagged instances, one in ten running with addresses "
        "in recursion=2). Each implementation takes the body as bytes and returns the "
        "ProviderInstance JSON array as bytes; the three outputs are asserted equal before "
        f"timing. p50/p90 over {reps} interleaved runs in one process ({reps // 2} above 10k).",
        "",
        *conversion,
        "",
        "## Import times",
        "",
        f"`python -X importtime -c 'import <module>'`, each in a fresh process with an empty "
        f"environment, {import_reps} runs; cumulative time of the module. The heaviest column "
        "lists what it pulls in beyond the interpreter's own start-up (ms).",
        "",
        *imports,
        "",
        "## Start-up, whole processes",
        "",
        "Each row is a fresh interpreter with an empty environment running `python -c <code>`, "
        f"measured by `benches/spawn.c`; {import_reps + 10} rounds, the cases taking turns. "
        "*Over the floor* is the median wall time beyond `python -c pass`.",
        "",
        *processes,
        "",
    ]
    payload = {
        "date": date,
        "conversion": raw,
        "imports": {m.module: m.cumulative_us for m in measured},
        "processes": process_walls,
    }

    def save(out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "native.md").write_text("\n".join(text))
        (out / "native.json").write_text(json.dumps(payload, indent=1) + "\n")
        print(f"bench: {wrote(out / 'native.md')}", file=sys.stderr)

    write_results(save, args.out, args.quick, HERE / "results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
