#!/usr/bin/env bash
# Build the provider the way users get it (release abi3 wheel, pip-installed) from a commit of
# this repository, into a virtualenv of its own, with the benchmark-only dependencies
# (matplotlib for the plot, orjson for a baseline, pyinstrument for profiling). Prints the
# venv's python on stdout.
#
#   benches/venv.sh            # HEAD
#   benches/venv.sh <commit>   # any commit; uncommitted edits in the work tree are ignored
#   benches/venv.sh --worktree # the work tree as it is now, uncommitted edits included
#
# Environment: GARM_BENCH_VENV (default /var/cache/garm-provider-lxd-test/bench-venv),
# CARGO_TARGET_DIR (default /var/cache/garm-provider-lxd-test/target-bench).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
commit=${1:-HEAD}
venv=${GARM_BENCH_VENV:-/var/cache/garm-provider-lxd-test/bench-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/garm-provider-lxd-test/target-bench}

snapshot=$(mktemp -d /tmp/garm-bench-src.XXXXXX)
trap 'rm -rf "$snapshot"' EXIT
if [[ $commit == --worktree ]]; then
	tar -C "$root" --exclude=./.git --exclude=./.venv --exclude='*.so' -c . | tar -x -C "$snapshot"
	label="the work tree"
else
	git -C "$root" archive "$commit" | tar -x -C "$snapshot"
	label=$(git -C "$root" rev-parse --short "$commit")
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py=$venv/bin/python
"$py" -m pip install -q --upgrade pip >&2
"$py" -m pip install -q "maturin>=1.9.4,<2" matplotlib orjson pyinstrument >&2
(cd "$snapshot" && "$venv/bin/maturin" build --release --quiet --out "$snapshot/dist" >&2)
"$py" -m pip install -q --force-reinstall --no-deps "$snapshot"/dist/garm_provider_lxd-*.whl >&2
"$py" -m pip install -q "$(ls "$snapshot"/dist/garm_provider_lxd-*.whl)" >&2
echo "$label" >"$venv/garm-bench-source"
echo "venv.sh: installed $label into $venv" >&2
echo "$py"
