# shellcheck shell=bash
# The steps of lxd-up.sh as functions, with no side effects when sourced (after lxd-env.sh).
# Every step is idempotent and sets `changed=1` when it altered something. Server calls go
# through `lxc` (a caller may redefine it to drive another server, e.g. Incus) and reads
# through server_get.
# Globals shared with lxd-up.sh: here (this directory), changed, prefetched, GARM_TEST_*.
# shellcheck disable=SC2034,SC2154

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# Prints the answer to a GET on the server API with all white space removed, so callers can
# match fixed substrings; fails when the server answers an error. With GARM_TEST_API_SOCKET
# set it asks that socket with curl (a few ms); otherwise it uses `lxc query` (~100 ms).
server_get() {
	if [[ -n ${GARM_TEST_API_SOCKET:-} ]]; then
		curl -sf --unix-socket "$GARM_TEST_API_SOCKET" "http://lxd$1"
	else
		lxc query "$1"
	fi | tr -d '[:space:]'
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
	# Package scripts may start daemons: they must not inherit our stdout or lock.
	DEBIAN_FRONTEND=noninteractive apt-get update -qq 3>&- 9>&-
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" 3>&- 9>&-
	changed=1
	if [[ " ${missing[*]} " == *" lxd "* ]]; then
		disable_distro_lxd
	fi
}

# Debian's lxd package enables (and, unless policy-rc.d forbids it, starts) its own daemon on
# /var/lib/lxd. It does not share our state dir, but two daemons competing over lxcfs and the
# firewall is not worth it: switch the package's services off right after we installed it.
disable_distro_lxd() {
	local unit
	for unit in lxd-containers lxd; do
		log "disabling Debian's $unit service"
		if [[ -d /run/systemd/system ]]; then
			systemctl disable --now "$unit.service" 3>&- 9>&- || true
		else
			update-rc.d "$unit" disable 3>&- 9>&- || true
			"/etc/init.d/$unit" stop 3>&- 9>&- || true
		fi
	done
	if [[ -d /run/systemd/system ]]; then
		systemctl disable --now lxd.socket 3>&- 9>&- || true
	fi
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

# Prints "mountpoint fstype source superoptions" for the cgroup mounts, parents first.
host_cgroup_mounts() {
	awk '{
		for (i = 7; $i != "-"; i++) {}
		if ($5 == "/sys/fs/cgroup" || index($5, "/sys/fs/cgroup/") == 1)
			print $5, $(i + 1), $(i + 2), $(i + 3)
	}' "${1:-/proc/self/mountinfo}"
}

# Shell commands that rebuild the host's cgroup layout under the fresh /sys of `ip netns exec`,
# which otherwise hides it and makes systemd containers die at boot.
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

# Shell lines every private daemon (LXD, Incus, cluster members) runs before exec: the host's
# cgroup layout, and the descriptor limit lxd.service sets (thousands of instances hold
# thousands of files).
daemon_preamble() {
	cgroup_mount_script
	echo 'ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"'
}

start_daemon() {
	local script pid waited
	mkdir -p "$GARM_TEST_LXD_DIR"
	chmod 0711 "$GARM_TEST_STATE_DIR" "$GARM_TEST_LXD_DIR"
	# The daemon is gone, so any socket left behind is stale.
	rm -f "$GARM_TEST_LXD_SOCKET" "$GARM_TEST_LXD_PIDFILE"
	[[ -f $GARM_TEST_LXD_LOG ]] && mv -f "$GARM_TEST_LXD_LOG" "$GARM_TEST_LXD_LOG.1"
	script="set -e
$(daemon_preamble)
echo \$\$ >$(printf %q "$GARM_TEST_LXD_PIDFILE")
exec env -i PATH=$(printf %q "$PATH") LXD_DIR=$(printf %q "$GARM_TEST_LXD_DIR") \
lxd --group root --logfile $(printf %q "$GARM_TEST_LXD_LOG")"
	log "starting LXD in netns $GARM_TEST_NETNS (state in $GARM_TEST_LXD_DIR)"
	# Detached, in its own session, holding none of our file descriptors (not the caller's
	# pipes, not the lock), so callers that capture our output never wait on the daemon.
	setsid -f ip netns exec "$GARM_TEST_NETNS" unshare -m --propagation slave \
		sh -c "$script" </dev/null >>"$GARM_TEST_LXD_LOG" 2>&1 3>&- 9>&-
	for ((waited = 0; ; waited++)); do
		if pid=$(garm_test_daemon_pid) && lxd waitready --timeout=1 2>/dev/null; then
			break
		fi
		if ((waited >= 120)); then
			die "LXD did not become ready in 120 s; see $GARM_TEST_LXD_LOG"
		fi
		if ((waited >= 3)) && ! pid=$(garm_test_daemon_pid); then
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
	# A zombie still answers kill -0 until it is reaped; its exe link disappears at exit.
	while [[ -e /proc/$pid/exe ]] && readlink "/proc/$pid/exe" >/dev/null 2>&1; do sleep 0.2; done
}

# A daemon that answers on our socket while the pid file is missing or wrong: record its
# pid from GET /1.0 so the namespace and cgroup checks below apply to it.
adopt_daemon() {
	local pid
	[[ -S $GARM_TEST_LXD_SOCKET ]] || return 1
	pid=$(server_get /1.0 2>/dev/null | sed -n 's/.*"server_pid":\([0-9]*\).*/\1/p') || return 1
	[[ -n $pid ]] || return 1
	log "found LXD (pid $pid) answering without a valid pid file; adopting it"
	printf '%s\n' "$pid" >"$GARM_TEST_LXD_PIDFILE"
}

ensure_daemon() {
	local pid
	if pid=$(garm_test_daemon_pid) || { adopt_daemon && pid=$(garm_test_daemon_pid); }; then
		if [[ $(readlink "/proc/$pid/ns/net") != "net:[$(stat -L -c %i "/run/netns/$GARM_TEST_NETNS")]" ]]; then
			stop_stale_daemon "$pid"
			start_daemon
		elif ! server_get /internal/ready >/dev/null 2>&1 && ! lxd waitready --timeout=120; then
			die "LXD (pid $pid) is not answering; see $GARM_TEST_LXD_LOG"
		fi
	else
		start_daemon
	fi
	check_daemon_cgroups "$(garm_test_daemon_pid)"
}

# Prints "mountpoint fstype device" for each cgroup mount; the device identifies the hierarchy
# (a v1 controller mounted again is the same superblock), "-" for the tmpfs above them.
cgroup_hierarchies() {
	awk '{
		for (i = 7; $i != "-"; i++) {}
		if ($5 == "/sys/fs/cgroup" || index($5, "/sys/fs/cgroup/") == 1)
			print $5, $(i + 1), ($(i + 1) ~ /^cgroup/ ? $3 : "-")
	}' "$1" | sort
}

# Systemd containers die at boot unless the daemon sees the same cgroup hierarchies as the host.
check_daemon_cgroups() {
	local pid=$1 missing
	missing=$(comm -23 <(cgroup_hierarchies /proc/self/mountinfo) \
		<(cgroup_hierarchies "/proc/$pid/mountinfo"))
	if [[ -n $missing ]]; then
		die "the daemon's mount namespace lacks host cgroup mounts: ${missing//$'\n'/, }"
	fi
}

# The ensure_pool, ensure_bridge and ensure_profile steps take an optional argument: the
# server_get answer for their object, fetched ahead (see prefetch); empty means ask now.

ensure_pool() {
	[[ -n ${1:-} ]] && return 0
	server_get "/1.0/storage-pools/$GARM_TEST_POOL" >/dev/null 2>&1 && return 0
	log "creating storage pool $GARM_TEST_POOL"
	lxc storage create "$GARM_TEST_POOL" dir
	changed=1
}

ensure_bridge() {
	local current=${1:-} key
	local -A desired=([ipv4.address]=$GARM_TEST_BRIDGE_ADDRESS [ipv4.nat]=false [ipv6.address]=none)
	if [[ -z $current ]] && ! current=$(server_get "/1.0/networks/$GARM_TEST_BRIDGE" 2>/dev/null); then
		log "creating bridge $GARM_TEST_BRIDGE"
		lxc network create "$GARM_TEST_BRIDGE" "ipv4.address=${desired[ipv4.address]}" \
			"ipv4.nat=${desired[ipv4.nat]}" "ipv6.address=${desired[ipv6.address]}"
		changed=1
		return 0
	fi
	for key in "${!desired[@]}"; do
		[[ $current == *"\"$key\":\"${desired[$key]}\""* ]] && continue
		log "setting $GARM_TEST_BRIDGE $key=${desired[$key]}"
		lxc network set "$GARM_TEST_BRIDGE" "$key=${desired[$key]}"
		changed=1
	done
}

ensure_profile() {
	local current=${1:-}
	# The server sorts keys, so its answer contains exactly this text when the devices match.
	local want="\"devices\":{\"eth0\":{\"name\":\"eth0\",\"network\":\"$GARM_TEST_BRIDGE\",\"type\":\"nic\"},"
	want+="\"root\":{\"path\":\"/\",\"pool\":\"$GARM_TEST_POOL\",\"type\":\"disk\"}}"
	[[ -n $current ]] || current=$(server_get "/1.0/profiles/$GARM_TEST_PROFILE")
	[[ $current == *"$want"* ]] && return 0
	log "setting the devices of profile $GARM_TEST_PROFILE"
	lxc profile edit "$GARM_TEST_PROFILE" <<-EOF
		config: {}
		description: Default LXD profile
		devices:
		  eth0:
		    name: eth0
		    network: $GARM_TEST_BRIDGE
		    type: nic
		  root:
		    path: /
		    pool: $GARM_TEST_POOL
		    type: disk
	EOF
	changed=1
}

# Fetches the given API paths at once into the array `prefetched`, in order, each empty when
# its GET failed. Concurrent because every answer about a pool, network or profile makes the
# server scan all instances for used_by, which adds up with thousands of them.
prefetch() {
	local path fd fds=() i
	for path in "$@"; do
		exec {fd}< <(server_get "$path" 2>/dev/null || true)
		fds+=("$fd")
	done
	prefetched=()
	for i in "${!fds[@]}"; do
		fd=${fds[$i]}
		IFS= read -r -d '' "prefetched[$i]" <&"$fd" || true
		exec {fd}<&-
	done
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
	target=$(server_get "/1.0/images/aliases/$GARM_TEST_IMAGE" 2>/dev/null |
		sed -n 's/.*"target":"\([0-9a-f]*\)".*/\1/p') || true
	[[ $target == "$fingerprint" ]] && return 0
	log "importing image $GARM_TEST_IMAGE ($fingerprint)"
	server_get "/1.0/images/$fingerprint" >/dev/null 2>&1 || lxc image import "$tarball"
	if [[ -z $target ]]; then
		lxc image alias create "$GARM_TEST_IMAGE" "$fingerprint"
	else
		# Repoint the alias in one request: tests may be creating instances from it right now.
		# PUT, not PATCH: LXD 5.0.2's alias PATCH times out on its own database transaction.
		lxc query -X PUT -d "{\"target\": \"$fingerprint\", \"description\": \"\"}" \
			"/1.0/images/aliases/$GARM_TEST_IMAGE" >/dev/null
		lxc image delete "$target" || true
	fi
	changed=1
}

# Boot one container from the image and wait for its DHCP address on the bridge.
selftest() {
	local name=$GARM_TEST_SELFTEST_INSTANCE tries address=""
	local subnet=${GARM_TEST_BRIDGE_ADDRESS%.*}.
	lxc delete --force "$name" >/dev/null 2>&1 || true
	lxc launch "$GARM_TEST_IMAGE" "$name" -p "$GARM_TEST_PROFILE" >/dev/null
	for ((tries = 0; tries < 300; tries++)); do
		address=$(server_get "/1.0/instances/$name/state" |
			grep -o "\"address\":\"${subnet//./\\.}[0-9]*\"" | head -n 1) || true
		[[ -n $address ]] && break
		sleep 0.1
	done
	lxc delete --force "$name"
	[[ -n $address ]] || die "container $name got no ${subnet}x address in 30 s"
	address=${address#\"address\":\"}
	log "self-test: container booted and got ${address%\"}"
}
