"""Time from CreateInstance to `idle`: the cloud-init base image against a baked runner image.

    .venv/bin/python benches/bench_runner_image.py              # 3 runners per image
    .venv/bin/python benches/bench_runner_image.py --runs 1 --padding-mb 10 --no-write
    .venv/bin/python benches/bench_runner_image.py --storage btrfs --download-mbps 25

Uses the end-to-end kit (docs/e2e.md): the test LXD daemon, the `garm-cloudinit` image and the
fake GARM, whose stub runner tarball is padded to a realistic size (120 MB by default,
generated at run time). `garm-provider-lxd image build` bakes that runner into an image; then
runners are created alternately from the base and the baked image with the provider's default
install script (JIT). Checks inside the benchmark: every runner reaches `idle`, every base
runner downloads the tarball once and no baked runner downloads it. Writes a "Runner images"
section of benches/results/e2e.md, one per `--compression`, `--storage` and `--download-mbps`
(median of the runs; target baked ≤ 0.6x base).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benches"))

import pylxd  # noqa: E402
from conftest import LXD_UP, bootstrap_payload, make_runner, run_env_script  # noqa: E402
from e2e.driver import Runner, Scenario  # noqa: E402
from e2e.harness import FakeGarm, build_image  # noqa: E402
from e2e.results import write_section  # noqa: E402
from lxdapi import Lxd, storage_profile  # noqa: E402

HEADING = "Runner images: base against baked (compression: {}, storage: {}, download: {})"
TARGET_RATIO = 0.6


def provider_bin() -> str:
    """The garm-provider-lxd script installed next to this interpreter."""
    path = Path(sys.executable).parent / "garm-provider-lxd"
    if not os.access(path, os.X_OK):
        sys.exit(f"{path} is not installed; run tests/setup.sh first")
    return str(path)


def bake(
    binary: str, config: Path, base: str, alias: str, garm: FakeGarm, compression: str
) -> dict[str, Any]:
    """Run `image build`; return its JSON result."""
    extra = ["--compression", compression] if compression else []
    done = subprocess.run(
        [binary, "image", "build", "--config", str(config), "--from", base, "--alias", alias,
         "--runner-url", garm.download_url, "--runner-sha256", garm.runner_sha256, *extra],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"image build failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclasses.dataclass(frozen=True)
class Sample:
    """One runner: seconds from the start of CreateInstance to each milestone."""

    returned: float  # the provider returned (image unpacked, instance started)
    first_callback: float  # the install script's first status (boot and cloud-init done)
    idle: float
    downloads: int


def warm(client: pylxd.Client, image: str, profile: str) -> None:
    """Create and delete one instance of image, untimed, so its volume is on the pool.

    On copy-on-write storage the first instance of an image unpacks it once into an image
    volume and every later one is a snapshot of it: that is what a pool's runners find
    after the first. On `dir` every instance unpacks the image and this changes nothing.
    """
    name = f"bench-warm-{uuid.uuid4().hex[:6]}"
    source = {"type": "image", "alias": image}
    body = {"name": name, "source": source, "profiles": [profile]}
    client.instances.create(body, wait=True).delete(wait=True)


def one_runner(scenario: Scenario, label: str, flavor: str) -> Sample:
    """Create a runner, wait for idle, delete it; return its milestones."""
    runner: Runner = scenario.wait(scenario.create(label, jit=True, flavor=flavor))
    final = runner.final
    downloads = [
        e for e in scenario.garm.events() if e["kind"] == "download" and e["t"] >= runner.started
    ]
    deleted = scenario.delete(runner)
    if final.get("status") != "idle" or deleted.returncode != 0:
        sys.exit(f"{runner.name}: final status {final}, delete exit {deleted.returncode}")
    return Sample(
        returned=runner.returned - runner.started,
        first_callback=runner.statuses[0]["t"] - runner.started,
        idle=final["t"] - runner.started,
        downloads=len(downloads),
    )


def report(
    rows: dict[str, list[Sample]],
    baked: dict[str, Any],
    padding: int,
    runs: int,
    compression: str,
    storage: str,
    download_mbps: float,
) -> str:
    """The Markdown section."""

    def median(kind: str, field: str) -> float:
        return float(statistics.median(getattr(sample, field) for sample in rows[kind]))

    def line(kind: str, label: str) -> str:
        runs_s = ", ".join(f"{s.idle:.1f}" for s in rows[kind])
        install = statistics.median(s.idle - s.first_callback for s in rows[kind])
        return (
            f"| {label} | {median(kind, 'returned'):.1f} | {median(kind, 'first_callback'):.1f} "
            f"| {install:.1f} | {median(kind, 'idle'):.1f} ({runs_s}) "
            f"| {rows[kind][0].downloads} |"
        )

    base, fast = median("base", "idle"), median("baked", "idle")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    verdict = "met" if fast <= TARGET_RATIO * base else "missed"
    return "\n".join([
        f"Written by `benches/bench_runner_image.py` ({runs} runners per image, alternating; "
        f"run {when}; {os.cpu_count()} CPUs, load average at the end "
        f"{os.getloadavg()[0]:.1f}). The fake GARM serves a stub runner padded to "
        f"{padding / 2**20:.0f} MB (incompressible), "
        + (f"paced to {download_mbps:g} MB/s as a download from the internet would be"
           if download_mbps else "as fast as the bridge carries it (no internet in between)")
        + "; default install script (JIT); the runners' "
        f"root disk on a `{storage}` pool, each image used once (untimed) before the runs. "
        "Seconds from the start of CreateInstance, medians; the install phase is the first "
        "status callback to `idle`.",
        "",
        "| image | provider returns | first callback | install phase | `idle` (runs) "
        "| tarball downloads per runner |",
        "|---|---|---|---|---|---|",
        line("base", "`garm-cloudinit` (base)"),
        line("baked", "baked by `image build`"),
        "",
        f"Baked / base to `idle`: **{fast / base:.2f}x** (target ≤ {TARGET_RATIO}x: {verdict}). "
        f"The build itself took {baked['seconds']:.0f} s; the baked image is "
        f"{baked['size'] / 2**20:.0f} MB ({compression}; the base image is gzip).",
    ])  # fmt: skip


def main() -> int:
    """Bake, time both images, write the results section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--padding-mb", type=int, default=120)
    parser.add_argument("--compression", default="", help="image build --compression")
    parser.add_argument("--no-write", action="store_true", help="print, do not write e2e.md")
    parser.add_argument("--storage", default="dir", help="runners' storage driver: dir, btrfs")
    parser.add_argument(
        "--download-mbps",
        type=float,
        default=0.0,
        help="pace the tarball download to this many MB/s (default: as fast as the bridge goes)",
    )
    args = parser.parse_args()
    padding = args.padding_mb * 2**20

    env = run_env_script(LXD_UP)
    base = build_image(env["LXD_DIR"])
    client = pylxd.Client(endpoint=env["LXD_SOCKET"])
    bridge = client.networks.get(env["LXD_BRIDGE"]).config["ipv4.address"].split("/")[0]
    binary = provider_bin()
    work = Path(tempfile.mkdtemp(prefix="bench-runner-image-"))
    config = work / "config.toml"
    config.write_text(f"unix_socket_path = {json.dumps(env['LXD_SOCKET'])}\n")
    garm = FakeGarm.start(
        env["LXD_NETNS"], bridge, work / "fake-garm", None, padding, args.download_mbps
    )
    alias = f"bench-baked-{uuid.uuid4().hex[:6]}"
    baked: dict[str, Any] = {}
    try:
        baked = bake(binary, config, base, alias, garm, args.compression)
        print(f"baked {alias}: {baked}", file=sys.stderr)
        flavor = storage_profile(Lxd(env["LXD_SOCKET"]), args.storage) or "default"
        for image in (base, alias):
            warm(client, image, flavor)
        rows: dict[str, list[Sample]] = {"base": [], "baked": []}
        for run in range(args.runs):
            for kind, image in (("base", base), ("baked", alias)):
                scenario = Scenario(make_runner(binary), config, str(uuid.uuid4()),
                                    bootstrap_payload, image, garm, env["LXD_DIR"], client,
                                    env["LXD_POOL"], [])  # fmt: skip
                sample = one_runner(scenario, f"bench-{kind}", flavor)
                expected = 1 if kind == "base" else 0
                if sample.downloads != expected:
                    sys.exit(f"{kind} runner downloaded the tarball {sample.downloads} times")
                rows[kind].append(sample)
                print(f"run {run + 1} {kind}: {sample}", file=sys.stderr)
        compression = args.compression or "server default"
        text = report(
            rows, baked, padding, args.runs, compression, args.storage, args.download_mbps
        )
        print(text)
        if not args.no_write:
            download = f"{args.download_mbps:g} MB/s" if args.download_mbps else "unpaced"
            write_section(HEADING.format(compression, args.storage, download), text)
    finally:
        garm.stop()
        if baked and client.images.exists(baked["fingerprint"]):
            client.images.get(baked["fingerprint"]).delete(wait=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
