#!/usr/bin/env bash
# Stop the private test LXD daemon (instances are shut down cleanly first). Keeps all state:
# lxd-up.sh starts it again with the same instances, images and network. Idempotent.
# tests/env/down.sh stops this daemon, Incus and the cluster, and their network namespaces.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lxd-env.sh"

log() { printf 'lxd-down: %s\n' "$*" >&2; }

# Same lock as lxd-up.sh, so a stop never races a start.
mkdir -p "$GARM_TEST_STATE_DIR"
exec 9>"$GARM_TEST_STATE_DIR/lxd-up.lock"
flock 9

wait_gone() {
	local pid=$1 tries=$2
	while ((tries-- > 0)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	! kill -0 "$pid" 2>/dev/null
}

if ! pid=$(garm_test_daemon_pid); then
	log "LXD is not running"
	rm -f "$GARM_TEST_LXD_PIDFILE"
	exit 0
fi

log "stopping LXD (pid $pid) and its instances"
if ! lxd shutdown --timeout=120 9>&- || ! wait_gone "$pid" 50; then
	log "clean shutdown did not finish; terminating pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_gone "$pid" 50; then
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 50
	fi
fi
rm -f "$GARM_TEST_LXD_PIDFILE"
log "stopped"
