#!/usr/bin/env bash
# Bring up the private LXD daemon used by the tests and the README demo.
# Idempotent: safe when everything is already up (fast path), after the daemon died or its
# network namespace vanished, and on a fresh Debian 12 machine (installs what it needs).
# Progress goes to stderr; stdout carries only KEY=VALUE lines, LXD_SOCKET last.
# GARM_TEST_LXD_SELFTEST=1 forces the container boot check on the fast path too.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lxd-env.sh"
source "$here/lxd-lib.sh"

# Keep stdout for the final KEY=VALUE lines; everything else (lxc chatter too) goes to stderr.
exec 3>&1 1>&2

# One run at a time (parallel pytest workers, a demo in another shell).
mkdir -p "$GARM_TEST_STATE_DIR"
exec 9>"$GARM_TEST_STATE_DIR/lxd-up.lock"
flock -w 600 9 || die "another run held $GARM_TEST_STATE_DIR/lxd-up.lock for 10 minutes"

changed=0

main() {
	ensure_packages
	ensure_netns
	GARM_TEST_API_SOCKET=$GARM_TEST_LXD_SOCKET
	ensure_daemon
	prefetch "/1.0/storage-pools/$GARM_TEST_POOL" "/1.0/networks/$GARM_TEST_BRIDGE" \
		"/1.0/profiles/$GARM_TEST_PROFILE"
	ensure_pool "${prefetched[0]}"
	ensure_bridge "${prefetched[1]}"
	ensure_profile "${prefetched[2]}"
	ensure_image
	if ((changed)) || [[ ${GARM_TEST_LXD_SELFTEST:-0} == 1 ]]; then
		selftest
	fi
	printf '%s=%s\n' \
		LXD_DIR "$GARM_TEST_LXD_DIR" \
		LXD_NETNS "$GARM_TEST_NETNS" \
		LXD_BRIDGE "$GARM_TEST_BRIDGE" \
		LXD_POOL "$GARM_TEST_POOL" \
		LXD_PROFILE "$GARM_TEST_PROFILE" \
		LXD_IMAGE "$GARM_TEST_IMAGE" \
		LXD_SOCKET "$GARM_TEST_LXD_SOCKET" >&3
}

main "$@"
