#!/usr/bin/env bash
# Set up everything the test suite needs on a Debian 12 machine, then run it all:
# lints, the Rust unit tests, and pytest against a private LXD daemon (tests/env/lxd-up.sh).
# Idempotent: safe to run again on the same machine. It leaves the private LXD, Incus and cluster
# daemons running for the next run; tests/env/down.sh [--purge] stops them (see the README).
#
#   tests/run.sh              everything (what CI runs)
#   tests/run.sh -m "not e2e" extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# A test run leaves the checkout as it found it: tests and quick benchmarks write their results
# to temporary directories; committed results change only when a benchmark is run on purpose.
checkout_state() {
    git -C "$root" status --porcelain --untracked-files=all 2>/dev/null || true
    git -C "$root" diff --no-ext-diff HEAD 2>/dev/null | sha256sum
}
checkout_before=$(checkout_state)

source tests/setup.sh

echo "== lints"
"$venv/bin/ruff" check python tests benches testdata build_backend
"$venv/bin/ruff" format --check python tests benches testdata build_backend
"$venv/bin/mypy" --strict python/garm_provider_lxd tests benches testdata build_backend
# The stub against the built extension: every name, signature and default of _native.pyi.
(cd / && "$py" -m mypy.stubtest garm_provider_lxd._native)
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings

echo "== cargo test"
cargo test --quiet

echo "== LXD"
tests/env/lxd-up.sh

echo "== the wheel users install (setup.sh's pip wheel ., auditwheel, a clean venv without Rust)"
tests/wheel-check.sh "$wheel"

echo "== pytest"
# From outside the source tree, so the tests exercise the installed wheel.
(cd / && "$py" -m pytest -p no:cacheprovider --rootdir "$root" -c "$root/pyproject.toml" \
    "$root/tests" "$@")

echo "== benchmarks (quick mode, so the harness cannot rot; results go to a temp dir)"
"$py" benches/bench_native.py --quick
"$py" benches/bench_commands.py --quick
"$py" benches/bench_adversarial.py --quick
"$py" benches/bench_burst.py --quick

echo "== the checkout is as the run found it (git status)"
checkout_after=$(checkout_state)
if [ "$checkout_before" != "$checkout_after" ]; then
    echo "run.sh: the run changed the checkout:" >&2
    diff <(printf '%s\n' "$checkout_before") <(printf '%s\n' "$checkout_after") >&2 || true
    exit 1
fi
