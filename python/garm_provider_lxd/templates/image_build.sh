#!/bin/bash
# Bakes the actions runner into this instance for `garm-provider-lxd image build`.
set -o errexit -o nounset -o pipefail -o errtrace
umask 022
@@VALUES@@
STATE=@@STATE@@
RUNNER_HOME="/home/${RUNNER_USER}"
RUNNER_DIR="${RUNNER_HOME}/actions-runner"
ARCHIVE="${STATE}/runner.tar.gz"

step() {
	printf '%s\n' "$1" > "${STATE}/step.tmp"
	mv -f "${STATE}/step.tmp" "${STATE}/step"
	echo "image build: $1"
}
fail() {
	trap - ERR
	printf '%s\n' "$1" > "${STATE}/failed.tmp"
	mv -f "${STATE}/failed.tmp" "${STATE}/failed"
	echo "image build failed: $1" >&2
	exit 1
}
trap 'fail "build script failed at line ${LINENO}"' ERR

# cloud-init installs the packages before it runs this script, but reports a failure there
# only once it has finished, after the whole download: look at its log now. (The seal script
# still fails on any cloud-init error, should this miss one.)
step "checking the package step"
failed='Failed to install packages|Running module package[-_]update[-_]upgrade[-_]install .* failed'
if grep -qE "$failed" /var/log/cloud-init.log 2> /dev/null; then
	reason=$(grep -hE '^(E|Error|ERROR): ' /var/log/cloud-init-output.log 2> /dev/null \
		| tail -n 1) || true
	fail "the package step (${PACKAGES}) failed: ${reason:-see /var/log/cloud-init-output.log}"
fi

step "downloading ${SHOWN_URL}"
if ! out=$(curl --fail --silent --show-error --location --retry 3 --retry-delay 2 \
	--connect-timeout 20 -o "$ARCHIVE" "$RUNNER_URL" 2>&1); then
	fail "download of ${SHOWN_URL} failed: $(printf '%s' "$out" | tail -n 1)"
fi
if [ -n "$RUNNER_SHA256" ]; then
	step "verifying the checksum"
	got=$(sha256sum "$ARCHIVE" | cut -d ' ' -f 1)
	[ "$got" = "$RUNNER_SHA256" ] \
		|| fail "checksum mismatch for ${SHOWN_URL}: got ${got}, expected ${RUNNER_SHA256}"
fi
step "extracting the runner into ${RUNNER_DIR}"
rm -rf "$RUNNER_DIR"
mkdir -p "$RUNNER_DIR"
tar -xf "$ARCHIVE" -C "$RUNNER_DIR" || fail "cannot extract ${SHOWN_URL}: not a tar archive"
rm -f "$ARCHIVE"
[ -x "${RUNNER_DIR}/config.sh" ] \
	|| fail "${SHOWN_URL} has no config.sh: not an actions-runner release"
chown -R "${RUNNER_USER}:$(id -gn "$RUNNER_USER")" "$RUNNER_HOME"
if [ -x "${RUNNER_DIR}/bin/installdependencies.sh" ]; then
	step "running bin/installdependencies.sh"
	(cd "$RUNNER_DIR" && ./bin/installdependencies.sh) > "${STATE}/deps.log" 2>&1 \
		|| fail "bin/installdependencies.sh failed: $(tail -n 1 "${STATE}/deps.log")"
fi
# GARM's own install template copies /opt/cache/actions-runner/<version> when it exists; a
# link to the runner's home copy makes that copy a link, and the runner is found in place.
if [ -n "$RUNNER_VERSION" ]; then
	mkdir -p /opt/cache/actions-runner
	ln -sfn "$RUNNER_DIR" "/opt/cache/actions-runner/${RUNNER_VERSION}"
fi
step "waiting for cloud-init to finish"
# Sealing must wait for cloud-init to finish, which waits for this script: run it apart.
if command -v systemd-run > /dev/null 2>&1; then
	systemd-run --no-block --unit=garm-image-seal --quiet /bin/bash "${STATE}/seal.sh"
else
	setsid /bin/bash "${STATE}/seal.sh" < /dev/null > /dev/null 2>&1 &
fi
