#!/usr/bin/env bash
# Bring up a private LXD daemon for the benchmarks, apart from the test suite's (same LXD
# package, same busybox image, its own state, network namespace and bridge). Idempotent.
# Prints the daemon's unix socket path on stdout; progress goes to stderr.
#
#   socket=$(benches/lxd-up.sh)
#   python benches/bench_commands.py --socket "$socket"
#
# Why a daemon of its own: thousands of instances must not slow down or starve the tests, and
# LXD 5.0 holds about two file descriptors per instance it has listed (and leaks one per such
# instance deleted), so a 5,000-instance run needs a daemon with most of its descriptors free.
# Stop it (and its containers) with: LXD_DIR=/var/lib/garm-provider-lxd-bench/lxd lxd shutdown
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

netns=garm-bench
state=/var/lib/garm-provider-lxd-bench
export LXD_DIR=$state/lxd
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
bridge=garmbench0
bridge_address=10.170.0.1/24
pidfile=$state/lxd.pid
logfile=$state/lxd.log
image_cache=/var/cache/garm-provider-lxd-test

log() { printf 'bench lxd-up: %s\n' "$*" >&2; }
exec 3>&1 1>&2
mkdir -p "$LXD_DIR"
chmod 0711 "$state" "$LXD_DIR"
exec 9>"$state/lxd-up.lock"
flock 9

if ! command -v lxd >/dev/null; then
	log "the lxd package is missing: run tests/env/lxd-up.sh once (it installs what LXD needs)"
	exit 1
fi

if [[ ! -e /run/netns/$netns ]]; then
	log "creating network namespace $netns"
	ip netns add "$netns"
fi
ip -n "$netns" link set lo up

daemon_pid() {
	local pid
	pid=$(cat "$pidfile" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ && $(readlink "/proc/$pid/exe" 2>/dev/null) == */lxd ]] || return 1
	tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "LXD_DIR=$LXD_DIR" || return 1
	printf '%s\n' "$pid"
}

# The host's cgroup mounts, rebuilt under the fresh /sys that `ip netns exec` mounts.
cgroup_mount_script() {
	awk '{
		for (i = 7; $i != "-"; i++) {}
		if ($5 == "/sys/fs/cgroup" || index($5, "/sys/fs/cgroup/") == 1)
			printf "mkdir -p %s && mount -t %s -o %s %s %s\n", $5, $(i + 1), $(i + 3), $(i + 2), $5
	}' /proc/self/mountinfo
	local link
	for link in /sys/fs/cgroup/*; do
		[[ -L $link ]] && printf 'ln -sfn %q %q\n' "$(readlink "$link")" "$link"
	done
	return 0
}

if ! daemon_pid >/dev/null; then
	rm -f "$LXD_DIR/unix.socket" "$pidfile"
	log "starting LXD in netns $netns (state in $LXD_DIR)"
	script="set -e
$(cgroup_mount_script)
echo \$\$ >$pidfile
exec env -i PATH=$PATH LXD_DIR=$LXD_DIR lxd --group root --logfile $logfile"
	setsid -f ip netns exec "$netns" unshare -m --propagation slave sh -c "$script" \
		</dev/null >>"$logfile" 2>&1 3>&- 9>&-
	for ((waited = 0; waited < 600; waited++)); do
		daemon_pid >/dev/null && lxd waitready --timeout=1 2>/dev/null && break
		sleep 0.2
	done
	lxd waitready --timeout=1 || { log "LXD did not start; see $logfile"; exit 1; }
fi

lxc storage show default >/dev/null 2>&1 || lxc storage create default dir
if ! lxc network show "$bridge" 2>/dev/null | grep -qx 'managed: true'; then
	# The bridge of a daemon whose state was deleted outlives it in the namespace; LXD would
	# see it as an unmanaged interface and refuse it in the profile.
	ip -n "$netns" link del "$bridge" 2>/dev/null || true
	lxc network create "$bridge" ipv4.address="$bridge_address" ipv4.nat=false ipv6.address=none
fi
if ! lxc profile device show default | grep -q "network: $bridge"; then
	lxc profile device add default eth0 nic network="$bridge" name=eth0
fi
lxc profile device show default | grep -q "pool: default" ||
	lxc profile device add default root disk path=/ pool=default

if ! lxc image info busybox >/dev/null 2>&1; then
	tarball=$(ls "$image_cache"/busybox-*.tar.gz 2>/dev/null | head -n 1 || true)
	if [[ -z $tarball ]]; then
		tarball=$state/busybox.tar.gz
		"$root/tests/env/busybox-image.sh" "$tarball"
	fi
	log "importing $tarball as busybox"
	lxc image import "$tarball" --alias busybox
fi
echo "$LXD_DIR/unix.socket" >&3
