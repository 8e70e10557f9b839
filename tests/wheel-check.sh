#!/usr/bin/env bash
# The wheel users install, checked as they would use it: built as `pip wheel .` builds it, its
# platform tag confirmed by auditwheel (manylinux2014 or manylinux_2_28), installed into a clean
# virtualenv from wheels only, and run with no Rust toolchain on PATH and nothing else in the
# environment: --version, `userdata` for a conformance case, ListInstances against the test LXD.
#
# Called by tests/run.sh after tests/setup.sh (the test venv, whose PyYAML compares the user data)
# and tests/env/lxd-up.sh, with the wheel setup.sh has just built by tests/wheel-build.sh (the
# same `pip wheel .`): checked, not built again. Without an argument it builds one. Idempotent:
# what it makes is in a temporary directory.
#
#   tests/wheel-check.sh [WHEEL]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
given=${1:-}
venv=${GARM_TEST_VENV:-$root/.venv}
py=$venv/bin/python
socket=/var/lib/garm-provider-lxd-test/lxd/unix.socket
case_file=$root/testdata/conformance/cases/c01_minimal_jit
clean_env=(env -i PATH=/usr/bin:/bin)

fail() {
    echo "wheel-check: $*" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ -n "$given" ]; then
    echo "-- the wheel tests/setup.sh built (pip wheel .)"
    [ -f "$given" ] || fail "no such wheel: $given"
    mkdir "$work/dist"
    cp "$given" "$work/dist/"
else
    echo "-- pip wheel ."
    "$root/tests/wheel-build.sh" "$work/dist"
fi
wheels=("$work"/dist/*.whl)
((${#wheels[@]} == 1)) || fail "expected one wheel, got: ${wheels[*]}"
wheel=${wheels[0]}
echo "   ${wheel##*/}"
case "${wheel##*/}" in
    garm_provider_lxd-*-cp310-abi3-manylinux*) ;;
    *) fail "not a cp310-abi3 manylinux wheel: ${wheel##*/}" ;;
esac

echo "-- the files the package needs at run time are in the wheel"
# The operator subpackage, the stub and every template (the runner install scripts, the image
# builder's scripts) are read from the installed package, not from this checkout.
"$py" - "$wheel" "$root/python" <<'EOF'
import pathlib
import sys
import zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
source = pathlib.Path(sys.argv[2])
wanted = sorted(
    str(path.relative_to(source))
    for pattern in ("garm_provider_lxd/**/*.py", "garm_provider_lxd/**/*.pyi", "garm_provider_lxd/templates/*")
    for path in source.glob(pattern)
    if "__pycache__" not in path.parts
)
missing = [name for name in wanted if name not in names]
if missing:
    sys.exit(f"wheel-check: the wheel lacks {missing}")
print(f"   {len(wanted)} files, none missing")
EOF

echo "-- auditwheel show"
python3 -m venv "$work/tools"
"$work/tools/bin/pip" install -q auditwheel
report=$("$work/tools/bin/auditwheel" show "$wheel")
# auditwheel wraps its lines; the tag is quoted after "consistent with the following platform tag".
tag=$(tr '\n' ' ' <<<"$report" | sed -n 's/.*consistent with the following platform tag: *"\([^"]*\)".*/\1/p')
echo "   $tag"
case "$tag" in
    manylinux_2_17_* | manylinux_2_28_*) ;;
    *) fail "auditwheel reports ${tag:-no tag}, not manylinux2014 or manylinux_2_28: $report" ;;
esac
# What pip on the oldest host the tag promises (CPython 3.10, glibc 2.17) would decide.
"$work/tools/bin/pip" install -q --dry-run --no-deps --only-binary :all: --implementation cp \
    --python-version 3.10 --platform manylinux2014_"$(uname -m)" --target "$work/old-host" \
    "$wheel" || fail "pip for CPython 3.10 on glibc 2.17 refuses ${wheel##*/}"

echo "-- install into a clean virtualenv, no Rust toolchain on PATH"
"${clean_env[@]}" sh -c '! command -v cargo && ! command -v rustc' >/dev/null ||
    fail "cargo or rustc is on PATH=/usr/bin:/bin; the install would not prove anything"
"${clean_env[@]}" /usr/bin/python3 -m venv "$work/venv"
# Wheels only: nothing may be compiled on the way in.
"${clean_env[@]}" "$work/venv/bin/pip" install -q --only-binary :all: "$wheel"
provider=$work/venv/bin/garm-provider-lxd

echo "-- garm-provider-lxd --version"
version=$("${clean_env[@]}" "$provider" --version)
wheel_version=${wheel##*/garm_provider_lxd-}
wheel_version=${wheel_version%%-*}
[[ $version == *"$wheel_version"* ]] || fail "--version printed '$version', the wheel is $wheel_version"
echo "   $version"

echo "-- garm-provider-lxd userdata < ${case_file##*/}.json"
"${clean_env[@]}" "$provider" userdata <"$case_file.json" >"$work/userdata"
# Compared as tests/test_userdata_conformance.py does: as YAML data, with the default install
# script standing in for the reference's placeholder (the test venv has PyYAML).
"$py" - "$work/userdata" "$case_file.userdata" <<'EOF'
import sys

import yaml

PLACEHOLDER = "<default install script>"
actual = yaml.safe_load(open(sys.argv[1], "rb"))
expected = yaml.safe_load(open(sys.argv[2], "rb"))
for entry in actual["write_files"]:
    if entry["path"] == "/install_runner.sh":
        entry["content"] = PLACEHOLDER
if actual != expected:
    sys.exit("wheel-check: userdata differs from the reference")
EOF
echo "   same as the reference"

echo "-- ListInstances against the test LXD daemon"
[ -S "$socket" ] || fail "no test LXD daemon at $socket (run tests/env/lxd-up.sh first)"
printf 'unix_socket_path = "%s"\n' "$socket" >"$work/config.toml"
listed=$("${clean_env[@]}" \
    GARM_COMMAND=ListInstances \
    GARM_CONTROLLER_ID="wheel-check-$(cat /proc/sys/kernel/random/uuid)" \
    GARM_POOL_ID=wheel-check-pool \
    GARM_INSTANCE_ID= \
    GARM_PROVIDER_CONFIG_FILE="$work/config.toml" \
    GARM_INTERFACE_VERSION=v0.1.1 \
    GARM_POOL_EXTRASPECS=e30= \
    "$provider")
# A controller id nobody else uses owns no instances.
[ "$listed" = "[]" ] || fail "ListInstances printed '$listed', expected []"
echo "   $listed"
