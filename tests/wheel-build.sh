#!/usr/bin/env bash
# Build the wheel users install, as `pip wheel .` builds it (linked by zig for manylinux2014, see
# pyproject.toml), into the directory given as the only argument. Used by tests/setup.sh and
# tests/wheel-check.sh.
#
# It reuses earlier builds of every checkout on this machine: its own cargo target dir next to
# the one the cargo builds (clippy, cargo test) use, so neither rebuilds the other's dependencies,
# and pyproject.toml's build requirements (maturin, ziglang) installed once in a virtualenv there
# instead of pip's throwaway build environment: zig's linker wrappers are named after the maturin
# and python that wrote them, and a new path on each build would make cargo rebuild everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: wheel-build.sh OUT_DIR}
target_dir=${CARGO_TARGET_DIR:-/var/cache/garm-provider-lxd-test/target}-zig
build_venv=$target_dir/build-venv
mkdir -p "$target_dir"

mapfile -t build_requires < <(python3 -c 'import ast, re, sys
text = open(sys.argv[1]).read()
print(*ast.literal_eval(re.search(r"^requires = (\[.*\])$", text, re.M)[1]), sep="\n")' \
    "$root/pyproject.toml")
((${#build_requires[@]})) || { echo "wheel-build: no build requirements in pyproject.toml" >&2; exit 1; }
(
    # Checkouts building at the same time must not install into the venv at the same time.
    flock 9
    [ -x "$build_venv/bin/python" ] || python3 -m venv "$build_venv"
    "$build_venv/bin/python" -m pip install -q --disable-pip-version-check "${build_requires[@]}"
) 9>"$target_dir/build-venv.lock"

# maturin's PEP 517 hook runs the `maturin` it finds on PATH.
PATH=$build_venv/bin:$PATH CARGO_TARGET_DIR=$target_dir "$build_venv/bin/python" -m pip wheel \
    -q --disable-pip-version-check --no-deps --no-build-isolation -w "$out" "$root"
