"""PEP 517 backend: maturin, with the Linux wheel linked by zig for glibc 2.17 (manylinux2014).

maturin's own PEP 517 hook builds with `--compatibility off`, so a wheel from `pip wheel .` or
`pip install .` only installs on hosts with the build machine's glibc (or newer), and
`[tool.maturin]` has no key that turns zig on. This hook adds `--zig --compatibility
manylinux2014` on Linux, unless the caller chose maturin's arguments
(`--config-settings build-args=...` or MATURIN_PEP517_ARGS). Every other hook is maturin's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import maturin
from maturin import (
    build_editable,
    build_sdist,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_wheel",
]

PORTABLE_ARGS = "--zig --compatibility manylinux2014"


def build_wheel(
    wheel_directory: str,
    config_settings: Mapping[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """Build the release wheel; on Linux for manylinux2014 unless other arguments were given."""
    settings = dict(config_settings or {})
    chosen = {"build-args", "maturin.build-args"} & settings.keys()
    if sys.platform == "linux" and not chosen and not os.environ.get("MATURIN_PEP517_ARGS"):
        settings["build-args"] = PORTABLE_ARGS
        # zig is `python -m ziglang` of this interpreter, which has the build requirements; the
        # `python3` on PATH (what maturin would run) may not.
        os.environ.setdefault("CARGO_ZIGBUILD_PYTHON_PATH", sys.executable)
    wheel: str = maturin.build_wheel(wheel_directory, settings, metadata_directory)
    return wheel
