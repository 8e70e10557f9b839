"""Run one process the way GARM does and measure it: wall time, CPU time and peak RSS."""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

SCRIPT = "garm-provider-lxd"
T = TypeVar("T")


@dataclasses.dataclass
class Sample:
    """One whole-process measurement."""

    wall: float
    cpu: float
    rss_mb: float
    returncode: int
    stdout: bytes = b""
    stderr: bytes = b""

    def public(self) -> dict[str, float]:
        """Return the numbers only (what the raw-samples JSON keeps)."""
        return {"wall": self.wall, "cpu": self.cpu, "rss_mb": self.rss_mb}


_launcher: list[str] = []  # the compiled spawn.c of this process, once built


def launcher() -> str | None:
    """Return spawn.c compiled (once per process, removed at exit), None without a C compiler."""
    if _launcher:
        return _launcher[0]
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    source = Path(__file__).resolve().parent / "spawn.c"
    # A directory of this process, so nothing is left in /tmp (cc takes a fraction of a second).
    where = tempfile.mkdtemp(prefix="garm-bench-spawn-")
    atexit.register(shutil.rmtree, where, True)
    binary = os.path.join(where, "spawn")
    subprocess.run([compiler, "-O2", "-o", binary, str(source)], check=True)
    _launcher.append(binary)
    return binary


def run(argv: Sequence[str], env: dict[str, str], stdin: bytes = b"") -> Sample:
    """Spawn argv with exactly env, feed stdin through a pipe, and measure the child."""
    spawn = launcher()
    if spawn is None:
        raise SystemExit("benches need a C compiler (cc) to build benches/spawn.c")
    report_r, report_w = os.pipe()
    try:
        with tempfile.TemporaryFile() as err:
            child = subprocess.Popen(
                [spawn, str(report_w), *argv],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                pass_fds=(report_w,),
            )
            os.close(report_w)
            report_w = -1
            out, _ = child.communicate(stdin)
            with os.fdopen(report_r, "rb") as reader:
                report_r = -1
                fields = reader.read().split()
            err.seek(0)
            errors = err.read()
    finally:
        for fd in (report_r, report_w):
            if fd >= 0:
                os.close(fd)
    if child.returncode != 0 or len(fields) != 5:
        raise RuntimeError(f"spawn failed ({child.returncode}): {errors.decode(errors='replace')}")
    status, wall, user, system, maxrss = fields
    return Sample(
        wall=float(wall),
        cpu=float(user) + float(system),
        rss_mb=int(maxrss) / 1024,  # Linux reports kilobytes
        returncode=int(status),
        stdout=out,
        stderr=errors,
    )


def find_script(explicit: str | None = None) -> Path:
    """Return the installed console script (next to this interpreter unless given)."""
    if explicit:
        return Path(explicit).resolve()
    for directory in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = directory / SCRIPT
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{SCRIPT} is not installed next to {sys.executable}; use --provider")


def interpreter_of(script: Path) -> str:
    """Return the absolute interpreter path in the script's shebang."""
    with script.open("rb") as handle:
        first = handle.readline().decode().strip()
    if not first.startswith("#!/"):
        raise SystemExit(f"{script}: no absolute shebang (GARM runs it with no PATH)")
    return first[2:].split()[0]


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    """Return the median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def checkout_commit() -> str:
    """The short commit of this checkout (the wheel tests/setup.sh installs is built from it)."""
    done = subprocess.run(
        ["git", "-C", str(Path(__file__).resolve().parent.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


QUICK_PREFIX = "garm-bench-results-"  # a quick run's results folder, deleted when it ends


def write_results(bench: Callable[[Path], T], out: Path | None, quick: bool, default: Path) -> T:
    """Run bench in its results folder: out if given, a temp dir in quick mode, else default."""
    if out is not None:
        return bench(out)
    if quick:
        with tempfile.TemporaryDirectory(prefix=QUICK_PREFIX) as tmp:
            return bench(Path(tmp))
    return bench(default)


def wrote(path: Path) -> str:
    """Where a report went: its path, or that a quick run keeps none (its folder is deleted)."""
    if path.parent.name.startswith(QUICK_PREFIX):
        return f"quick run: {path.name} not kept (--out DIR keeps it)"
    return f"wrote {path}"
