#!/usr/bin/env bash
# Install what the provider and its tests need on a Debian 12 machine: apt packages, a
# virtualenv (.venv, or $GARM_TEST_VENV) holding the abi3 wheel built from this checkout and the
# test tools. Idempotent. Sourced by tests/run.sh and tests/demo.sh; sets $venv, $py and $wheel.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The scripts use Debian 12's package names (LXD and, from bookworm-backports, Incus as debs);
# elsewhere (Ubuntu's LXD is a snap) they are not expected to work: say so before anything else.
if ! grep -qx 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
    echo "setup: warning: only Debian 12 (bookworm) is supported by these scripts; see the README" >&2
fi
need_apt=()
# btrfs-progs: LXD's btrfs driver (setup's copy-on-write pool tests); LXD detects it at start-up.
for pkg in python3-venv git curl btrfs-progs; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The oldest rustc that builds the locked crates: Cargo.toml's rust-version.
rust_min=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' "$root/Cargo.toml")
if ! command -v cargo >/dev/null; then
    echo "setup: a Rust toolchain (cargo, rustc >= $rust_min) is required; install it with rustup" >&2
    exit 1
fi
rust_have=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n' "$rust_min" "$rust_have" | sort -V | head -n1)" != "$rust_min" ]; then
    echo "setup: rustc $rust_have is too old: the locked crates need rustc >= $rust_min" >&2
    exit 1
fi

# Build outputs live outside the checkout so repeated runs (and fresh clones) reuse them.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/garm-provider-lxd-test/target}
mkdir -p "$CARGO_TARGET_DIR"

venv=${GARM_TEST_VENV:-$root/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py=$venv/bin/python
"$py" -m pip install -q --upgrade pip

echo "== building the wheel"
# As `pip wheel .` builds the wheel users install (manylinux2014, linked by zig).
rm -rf "$root/dist"
"$root/tests/wheel-build.sh" "$root/dist"
wheel=$(ls "$root"/dist/garm_provider_lxd-*.whl)
case "$wheel" in
    *-cp310-abi3-manylinux*) ;;
    *) echo "setup: expected one cp310-abi3 manylinux wheel, got $wheel" >&2; exit 1 ;;
esac
"$py" -m pip install -q --force-reinstall --no-deps "$wheel"
"$py" -m pip install -q "$wheel[test]"
