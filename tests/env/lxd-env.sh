# shellcheck shell=bash disable=SC2034 # the sourcing scripts use these
# Names and paths of the private test LXD daemon, in one place.
# Sourced by lxd-up.sh and lxd-down.sh; tests read them from lxd-up.sh's output.

GARM_TEST_NETNS=${GARM_TEST_NETNS:-garm-lxd}
GARM_TEST_LXD_DIR=${GARM_TEST_LXD_DIR:-/var/lib/garm-provider-lxd-test/lxd}
GARM_TEST_LXD_SOCKET=$GARM_TEST_LXD_DIR/unix.socket
GARM_TEST_STATE_DIR=${GARM_TEST_LXD_DIR%/*}
GARM_TEST_LXD_LOG=$GARM_TEST_STATE_DIR/lxd.log
GARM_TEST_LXD_PIDFILE=$GARM_TEST_STATE_DIR/lxd.pid
GARM_TEST_CACHE_DIR=${GARM_TEST_CACHE_DIR:-/var/cache/garm-provider-lxd-test}
GARM_TEST_BRIDGE=garmbr0
GARM_TEST_BRIDGE_ADDRESS=10.161.0.1/24
GARM_TEST_POOL=default
GARM_TEST_PROFILE=default
GARM_TEST_IMAGE=busybox
# Packages the environment needs (Debian 12 names); dnsmasq-base is only a Recommends of lxd.
GARM_TEST_PACKAGES=(lxd lxd-client dnsmasq-base busybox-static iptables nftables iproute2 util-linux curl)

GARM_TEST_SELFTEST_INSTANCE=garm-env-selftest

# Only system tools are used; a caller's PATH (a venv, no sbin) must not matter.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LXD_DIR=$GARM_TEST_LXD_DIR

# Prints the pid of the running test daemon; fails when it is not running.
garm_test_daemon_pid() {
	local pid
	pid=$(cat "$GARM_TEST_LXD_PIDFILE" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# A recycled pid, or another LXD daemon (the scratch one of a second state dir), does not
	# count: ours runs lxd with exactly LXD_DIR=<our dir> in its environment.
	[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */lxd ]] || return 1
	grep -qzxF "LXD_DIR=$GARM_TEST_LXD_DIR" "/proc/$pid/environ" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}
