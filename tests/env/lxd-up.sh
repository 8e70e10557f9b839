#!/usr/bin/env bash
# Bring up the private LXD daemon used by the tests and the README demo.
# Idempotent: safe when everything is already up (fast path), after the daemon died,
# and on a fresh Debian 12 machine (installs what it needs with apt-get).
# Progress goes to stderr; stdout carries only KEY=VALUE lines, LXD_SOCKET last.
# Set GARM_TEST_LXD_SELFTEST=1 to force the container boot check on the fast path too.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/env/lxd-env.sh
source "$here/lxd-env.sh"

# Keep stdout for the final KEY=VALUE lines; everything else (lxc chatter too) goes to stderr.
exec 3>&1 1>&2

# One run at a time (parallel pytest workers, a demo in another shell).
mkdir -p "$GARM_TEST_STATE_DIR"
exec 9>"$GARM_TEST_STATE_DIR/lxd-up.lock"
flock 9

changed=0

log() { printf 'lxd-up: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

ensure_packages() {
	local installed missing=() package
	installed=$(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${GARM_TEST_PACKAGES[@]}" \
		2>/dev/null | awk '$1 == "installed" { print $2 }') || true
	for package in "${GARM_TEST_PACKAGES[@]}"; do
		grep -qxF "$package" <<<"$installed" || missing+=("$package")
	done
	((${#missing[@]})) || return 0
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
	changed=1
	if [[ " ${missing[*]} " == *" lxd "* ]]; then
		disable_distro_lxd
	fi
}

# Debian's lxd package enables its own socket-activated daemon on /var/lib/lxd. It does not
# share our state dir, but two daemons fighting over lxcfs and firewall setup is not worth
# it: switch the package's units off right after installing it (only where systemd runs).
disable_distro_lxd() {
	[[ -d /run/systemd/system ]] || return 0
	local unit
	for unit in lxd.socket lxd.service lxd-containers.service; do
		log "disabling Debian's $unit"
		systemctl disable --now "$unit" || true
	done
}

ensure_netns() {
	if [[ -e /run/netns/$GARM_TEST_NETNS ]] && ip -n "$GARM_TEST_NETNS" link set lo up 2>/dev/null; then
		return 0
	fi
	log "creating network namespace $GARM_TEST_NETNS"
	ip netns delete "$GARM_TEST_NETNS" 2>/dev/null || true
	ip netns add "$GARM_TEST_NETNS"
	ip -n "$GARM_TEST_NETNS" link set lo up
	changed=1
}

# Prints "mountpoint fstype source superoptions" for the host's cgroup mounts, parents first.
host_cgroup_mounts() {
	awk '{
		for (i = 7; $i != "-"; i++) {}
		if ($5 == "/sys/fs/cgroup" || index($5, "/sys/fs/cgroup/") == 1)
			print $5, $(i + 1), $(i + 2), $(i + 3)
	}' "${1:-/proc/self/mountinfo}"
}

# Shell commands that rebuild the host's cgroup layout under the fresh /sys of `ip netns exec`.
cgroup_mount_script() {
	local mountpoint fstype source options link
	while read -r mountpoint fstype source options; do
		printf 'mkdir -p %q && mount -t %q -o %q %q %q\n' \
			"$mountpoint" "$fstype" "$options" "$source" "$mountpoint"
	done < <(host_cgroup_mounts)
	# Hybrid hosts under systemd also have symlinks such as cpu -> cpu,cpuacct.
	for link in /sys/fs/cgroup/*; do
		[[ -L $link ]] || continue
		printf 'ln -sfn %q %q\n' "$(readlink "$link")" "$link"
	done
}

daemon_pid() {
	local pid
	pid=$(cat "$GARM_TEST_LXD_PIDFILE" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */lxd ]] || return 1
	printf '%s\n' "$pid"
}

start_daemon() {
	local script pid waited
	mkdir -p "$GARM_TEST_LXD_DIR"
	chmod 0711 "$GARM_TEST_STATE_DIR" "$GARM_TEST_LXD_DIR"
	# The daemon is gone, so any socket left behind is stale.
	rm -f "$GARM_TEST_LXD_SOCKET" "$GARM_TEST_LXD_PIDFILE"
	[[ -f $GARM_TEST_LXD_LOG ]] && mv -f "$GARM_TEST_LXD_LOG" "$GARM_TEST_LXD_LOG.1"
	script="set -e
$(cgroup_mount_script)
echo \$\$ >$(printf %q "$GARM_TEST_LXD_PIDFILE")
exec env -i PATH=$(printf %q "$PATH") LXD_DIR=$(printf %q "$GARM_TEST_LXD_DIR") \
lxd --group root --logfile $(printf %q "$GARM_TEST_LXD_LOG")"
	log "starting LXD in netns $GARM_TEST_NETNS (state in $GARM_TEST_LXD_DIR)"
	# Detached, in its own session, holding none of our file descriptors, so callers that
	# capture this script's output never wait on the daemon.
	setsid -f ip netns exec "$GARM_TEST_NETNS" unshare -m --propagation slave \
		sh -c "$script" </dev/null >>"$GARM_TEST_LXD_LOG" 2>&1 3>&- 9>&-
	for ((waited = 0; ; waited++)); do
		if pid=$(daemon_pid) && lxd waitready --timeout=1 2>/dev/null; then
			break
		fi
		if ((waited >= 120)); then
			die "LXD did not become ready in 120 s; see $GARM_TEST_LXD_LOG"
		fi
		if ((waited >= 3)) && ! pid=$(daemon_pid); then
			tail -n 20 "$GARM_TEST_LXD_LOG" >&2 || true
			die "LXD exited during start; see $GARM_TEST_LXD_LOG"
		fi
		sleep 0.2
	done
	log "LXD is ready (pid $pid)"
	changed=1
}

stop_stale_daemon() {
	local pid=$1
	log "LXD (pid $pid) runs outside netns $GARM_TEST_NETNS; stopping it"
	lxd shutdown --timeout=60 || kill -TERM "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
}

ensure_daemon() {
	local pid
	if pid=$(daemon_pid); then
		if [[ $(readlink "/proc/$pid/ns/net") != "net:[$(stat -L -c %i "/run/netns/$GARM_TEST_NETNS")]" ]]; then
			stop_stale_daemon "$pid"
			start_daemon
		elif ! lxd waitready --timeout=120; then
			die "LXD (pid $pid) is not answering; see $GARM_TEST_LXD_LOG"
		fi
	else
		start_daemon
	fi
	check_daemon_cgroups "$(daemon_pid)"
}

# Systemd containers die at boot unless the daemon sees the same cgroup hierarchies as the host.
check_daemon_cgroups() {
	local pid=$1 missing
	missing=$(comm -23 <(host_cgroup_mounts | awk '{ print $1, $2 }' | sort) \
		<(host_cgroup_mounts "/proc/$pid/mountinfo" | awk '{ print $1, $2 }' | sort))
	if [[ -n $missing ]]; then
		die "the daemon's mount namespace lacks host cgroup mounts: ${missing//$'\n'/, }"
	fi
}

ensure_pool() {
	lxc storage show "$GARM_TEST_POOL" >/dev/null 2>&1 && return 0
	log "creating storage pool $GARM_TEST_POOL"
	lxc storage create "$GARM_TEST_POOL" dir
	changed=1
}

ensure_bridge() {
	local current key want have
	local -A desired=([ipv4.address]=$GARM_TEST_BRIDGE_ADDRESS [ipv4.nat]=false [ipv6.address]=none)
	if ! current=$(lxc network show "$GARM_TEST_BRIDGE" 2>/dev/null); then
		log "creating bridge $GARM_TEST_BRIDGE"
		lxc network create "$GARM_TEST_BRIDGE" "ipv4.address=${desired[ipv4.address]}" \
			"ipv4.nat=${desired[ipv4.nat]}" "ipv6.address=${desired[ipv6.address]}"
		changed=1
		return 0
	fi
	for key in "${!desired[@]}"; do
		want=${desired[$key]}
		have=$(awk -v k="$key:" '$1 == k { v = $2; gsub(/"/, "", v); print v }' <<<"$current")
		if [[ $have != "$want" ]]; then
			log "setting $GARM_TEST_BRIDGE $key=$want (was '${have}')"
			lxc network set "$GARM_TEST_BRIDGE" "$key=$want"
			changed=1
		fi
	done
}

ensure_profile() {
	local desired current
	desired="eth0:
  name: eth0
  network: $GARM_TEST_BRIDGE
  type: nic
root:
  path: /
  pool: $GARM_TEST_POOL
  type: disk"
	current=$(lxc profile device show "$GARM_TEST_PROFILE")
	[[ $current == "$desired" ]] && return 0
	log "setting the devices of profile $GARM_TEST_PROFILE"
	{
		printf 'config: {}\ndescription: Default LXD profile\ndevices:\n'
		sed 's/^/  /' <<<"$desired"
	} | lxc profile edit "$GARM_TEST_PROFILE"
	changed=1
}

# Key of the image recipe: the builder, its rootfs files (content and exec bit) and busybox.
image_recipe_key() {
	{
		cat "$here/busybox-image.sh"
		(cd "$here/busybox-rootfs" && find . -type f | LC_ALL=C sort | while read -r f; do
			[[ -x $f ]] && printf '%s +x\n' "$f" || printf '%s\n' "$f"
			cat "$f"
		done)
		sha256sum </bin/busybox
		uname -m
	} | sha256sum | cut -c1-16
}

ensure_image() {
	local tarball fingerprint target
	tarball=$GARM_TEST_CACHE_DIR/busybox-$(image_recipe_key).tar.gz
	if [[ ! -s $tarball ]]; then
		log "building $tarball"
		mkdir -p "$GARM_TEST_CACHE_DIR"
		rm -f "$GARM_TEST_CACHE_DIR"/busybox-*.tar.gz
		"$here/busybox-image.sh" "$tarball"
	fi
	fingerprint=$(sha256sum "$tarball" | cut -d' ' -f1)
	target=$(lxc query "/1.0/images/aliases/$GARM_TEST_IMAGE" 2>/dev/null |
		sed -n 's/^[[:space:]]*"target": "\([0-9a-f]*\)".*/\1/p') || true
	[[ $target == "$fingerprint" ]] && return 0
	log "importing image $GARM_TEST_IMAGE ($fingerprint)"
	lxc image info "$fingerprint" >/dev/null 2>&1 || lxc image import "$tarball"
	if [[ -n $target ]]; then
		lxc image alias delete "$GARM_TEST_IMAGE"
		lxc image delete "$target" || true
	fi
	lxc image alias create "$GARM_TEST_IMAGE" "$fingerprint"
	changed=1
}

# Boot one container from the image and wait for its DHCP address on the bridge.
selftest() {
	local name=$GARM_TEST_SELFTEST_INSTANCE tries address=""
	lxc delete --force "$name" >/dev/null 2>&1 || true
	lxc launch "$GARM_TEST_IMAGE" "$name" -p "$GARM_TEST_PROFILE" >/dev/null
	for ((tries = 0; tries < 300; tries++)); do
		address=$(lxc query "/1.0/instances/$name/state" |
			sed -n 's/^[[:space:]]*"address": "\(10\.161\.0\.[0-9]*\)".*/\1/p' | head -n 1)
		[[ -n $address ]] && break
		sleep 0.1
	done
	lxc delete --force "$name"
	[[ -n $address ]] || die "container $name got no 10.161.0.x address in 30 s"
	log "self-test: container booted and got $address"
}

main() {
	ensure_packages
	ensure_netns
	ensure_daemon
	ensure_pool
	ensure_bridge
	ensure_profile
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
