#!/usr/bin/env bash
# Set up everything the test suite needs on a Debian/Ubuntu machine, then run it all:
# lints, the Rust unit tests, and pytest against a private LXD daemon (tests/env/lxd-up.sh).
# Idempotent: safe to run again on the same machine.
#
#   tests/run.sh              everything (what CI runs)
#   tests/run.sh -m "not e2e" extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need_apt=()
for pkg in python3-venv git curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
    echo "tests/run.sh: a Rust toolchain (cargo, rustc >= 1.74) is required; install it with rustup" >&2
    exit 1
fi

# Build outputs live outside the checkout so repeated runs (and CI's fresh clones) reuse them.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/garm-provider-lxd-test/target}
mkdir -p "$CARGO_TARGET_DIR"

venv=${GARM_TEST_VENV:-$root/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py=$venv/bin/python
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q "maturin>=1.9.4,<2"

echo "== building the wheel"
rm -rf "$root/dist"
"$venv/bin/maturin" build --release --quiet --out "$root/dist" >/dev/null
wheel=$(ls "$root"/dist/garm_provider_lxd-*.whl)
case "$wheel" in
    *-cp310-abi3-*) ;;
    *) echo "tests/run.sh: expected one cp310-abi3 wheel, got $wheel" >&2; exit 1 ;;
esac
"$py" -m pip install -q --force-reinstall --no-deps "$wheel"
"$py" -m pip install -q "$wheel[test]"

echo "== lints"
"$venv/bin/ruff" check python tests benches testdata
"$venv/bin/ruff" format --check python tests benches testdata
"$venv/bin/mypy" --strict python/garm_provider_lxd
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings

echo "== cargo test"
cargo test --quiet

echo "== LXD"
tests/env/lxd-up.sh

echo "== pytest"
cd "$root/tests"
# Run against the installed wheel, not the source tree.
exec "$py" -m pytest -p no:cacheprovider --rootdir "$root" -c "$root/pyproject.toml" "$root/tests" "$@"
