# shellcheck shell=bash
# Names and paths of the private test Incus daemon, in one place. Sourced by incus-up.sh after
# lxd-env.sh, whose state and cache roots it shares; tests read them from incus-up.sh's output.

GARM_INCUS_NETNS=${GARM_TEST_INCUS_NETNS:-garm-incus}
GARM_INCUS_SUITE=bookworm-backports
export INCUS_DIR=${GARM_TEST_INCUS_DIR:-$GARM_TEST_STATE_DIR/incus}
GARM_INCUS_SOCKET=$INCUS_DIR/unix.socket
GARM_INCUS_LOG=$GARM_TEST_STATE_DIR/incus.log
GARM_INCUS_PIDFILE=$GARM_TEST_STATE_DIR/incus.pid
# The whole GET /1.0 answer of the last bring-up, for the record.
GARM_INCUS_SERVER_JSON=$GARM_TEST_STATE_DIR/incus-server.json
GARM_INCUS_BRIDGE=garmbr1
GARM_INCUS_BRIDGE_ADDRESS=10.162.0.1/24
# incusd lives in /usr/libexec/incus and finds its helpers (dnsmasq, iptables) on PATH.
GARM_INCUS_PATH=/usr/libexec/incus:$PATH
# API extensions the provider branches on (docs/clusters-and-incus.md, "What differs for the provider").
GARM_INCUS_EXTENSIONS=(instance_create_start instance_force_delete api_filtering
	instances_state_selective_recursion cloud_init instance_boot_mode operation_wait
	instance_get_full)

# Prints the pid of the running test Incus daemon; fails when it is not running.
incus_daemon_pid() {
	local pid
	pid=$(cat "$GARM_INCUS_PIDFILE" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */incusd ]] || return 1
	grep -qzxF "INCUS_DIR=$INCUS_DIR" "/proc/$pid/environ" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}
