"""CPU time and peak RSS of every adversarial case (testdata/adversarial), against the bounds.

    python benches/bench_adversarial.py            # 3 runs a case, results to benches/results
    python benches/bench_adversarial.py --quick    # 1 run a case (CI), results to a temp dir

Run it with the interpreter the provider is installed in (e.g. .venv/bin/python); the cases that
need LXD use the test daemon from tests/env/lxd-up.sh. Every case runs as one whole process,
as GARM runs the provider; the bound for any input a pool admin controls is 2 s of CPU and
256 MB of peak RSS (docs/security.md). Exit 1 when a case misses the bound or its expected exit
code. Writes adversarial.md and adversarial.json.

Cases that are not one provider process (a runner to make first, two creates racing, a fake
server, a parser fed directly: see testdata/adversarial/README.md) are not measured; the bench
says which it skipped and why, and lists them in its results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testdata"))

from adversarial_corpus import Case, invocation, load_cases
from lxdapi import DEFAULT_SOCKET, Lxd, force_delete
from proc import Sample, checkout_commit, find_script, run, write_results, wrote

RESULTS = Path(__file__).resolve().parent / "results"
CPU_BOUND_S = 2.0
RSS_BOUND_MB = 256.0
CONTROLLER = "0d7c3b9e-4f1a-4c55-8e2b-6a9f1d3c7e21"


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def measure(case: Case, script: Path, socket: str, workdir: Path) -> Sample:
    """Run one case once and remove whatever a create that succeeded made."""
    call = invocation(case, workdir, socket, CONTROLLER)
    sample = run([str(script), *call.argv_tail], call.env, call.stdin)
    if call.instance_name and sample.returncode == 0:
        force_delete(Lxd(socket), call.instance_name, call.project)
    return sample


def row(case: Case, samples: list[Sample]) -> dict[str, object]:
    """Summarise one case's runs: medians of CPU and wall, the worst RSS."""
    cpu = statistics.median(s.cpu for s in samples)
    rss = max(s.rss_mb for s in samples)
    exits = sorted({s.returncode for s in samples})
    ok = cpu <= CPU_BOUND_S and rss <= RSS_BOUND_MB and exits == [case.expect_exit]
    return {
        "case": case.name,
        "via": case.via,
        "about": case.about,
        "cpu_s": round(cpu, 3),
        "wall_s": round(statistics.median(s.wall for s in samples), 3),
        "rss_mb": round(rss, 1),
        "exit": exits,
        "expected_exit": case.expect_exit,
        "ok": ok,
    }


def markdown(rows: list[dict[str, object]], meta: dict[str, object], skipped: list[Case]) -> str:
    """The results table, worst CPU first, then the cases not measured."""
    ordered = sorted(rows, key=lambda r: -float(str(r["cpu_s"])))
    misses = [r for r in rows if not r["ok"]]
    lines = [
        "# Adversarial inputs: cost per case",
        "",
        f"Bounds: {CPU_BOUND_S:g} s of CPU and {RSS_BOUND_MB:g} MB of peak RSS per process, "
        "for any input that fits the 4 MiB stdin cap (docs/security.md).",
        "",
        f"Run {meta['when']} at commit {meta['commit']}, {meta['runs']} run(s) a case; CPU and "
        "wall are medians, RSS the worst run. Worst CPU first.",
        "",
        f"**{len(rows) - len(misses)} of {len(rows)} cases within bounds and with the expected "
        "exit code.**",
        "",
        "| case | via | CPU s | wall s | peak RSS MB | exit | |",
        "|---|---|--:|--:|--:|--:|---|",
    ]
    for r in ordered:
        exits = "/".join(str(e) for e in r["exit"])  # type: ignore[attr-defined]
        mark = "ok" if r["ok"] else "**MISS**"
        lines.append(
            f"| {r['case']} | {r['via']} | {r['cpu_s']} | {r['wall_s']} | {r['rss_mb']} "
            f"| {exits} | {mark} |"
        )
    lines += ["", "What each case is:", ""]
    lines += [f"- `{r['case']}`: {r['about']}" for r in sorted(rows, key=lambda r: str(r["case"]))]
    if skipped:
        lines += ["", "Not measured (not one provider process; run by the tests named in "
                  "testdata/adversarial/README.md):", ""]  # fmt: skip
        lines += [f"- `{case.name}` ({case.via}): {case.about}" for case in skipped]
    return "\n".join(lines) + "\n"


def bench(args: argparse.Namespace, out: Path) -> int:
    """Measure every case and write the results; return the number of misses."""
    script = find_script(args.provider)
    cases = load_cases()
    if args.only:
        cases = [case for case in cases if args.only in case.name]
    skipped = [case for case in cases if not case.one_process]
    cases = [case for case in cases if case.one_process]
    if skipped:
        kinds = ", ".join(sorted({case.kind for case in skipped}))
        log(f"skipped {len(skipped)} case(s) of {kinds}: not one provider process (a runner, a "
            "race, a fake server, a parser, a profile or a signal to set up first); their tests "
            "run them")  # fmt: skip
    if not Path(args.socket).exists() and any(case.needs_lxd for case in cases):
        log(f"no LXD socket at {args.socket}: run tests/env/lxd-up.sh first")
        return len(cases)
    runs = 1 if args.quick else args.runs
    rows = []
    with tempfile.TemporaryDirectory(prefix="garm-bench-adversarial-") as tmp:
        for case in cases:
            workdir = Path(tmp) / uuid.uuid4().hex
            workdir.mkdir()
            rows.append(
                row(case, [measure(case, script, args.socket, workdir) for _ in range(runs)])
            )
            log(f"{case.name}: cpu {rows[-1]['cpu_s']} s, rss {rows[-1]['rss_mb']} MB")
    meta = {
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": checkout_commit(),
        "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "adversarial.md").write_text(markdown(rows, meta, skipped))
    (out / "adversarial.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    misses = [r for r in rows if not r["ok"]]
    for r in misses:
        log(f"MISS {r['case']}: cpu {r['cpu_s']} s, rss {r['rss_mb']} MB, exit {r['exit']}")
    log(f"{wrote(out / 'adversarial.md')}: {len(rows) - len(misses)} of {len(rows)} within bounds")
    return len(misses)


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run a case, temp results")
    parser.add_argument("--runs", type=int, default=3, help="runs a case (default 3)")
    parser.add_argument("--only", default="", help="only cases whose name contains this")
    parser.add_argument("--out", type=Path, help="results directory (default: benches/results)")
    parser.add_argument("--provider", help="console script to run (default: next to python)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    args = parser.parse_args()
    misses = write_results(lambda out: bench(args, out), args.out, args.quick, RESULTS)
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
