# shellcheck shell=bash
# Starting, stopping and wiping the cluster members' LXD daemons. Sourced by cluster-up.sh
# after lxd-env.sh, lxd-lib.sh (daemon_preamble, check_daemon_cgroups) and cluster-env.sh.

member_pidfile() { printf '%s/member%s.pid\n' "$GARM_CLUSTER_DIR" "$1"; }
member_log() { printf '%s/member%s.log\n' "$GARM_CLUSTER_DIR" "$1"; }

# Point `lxc`, `lxd` and server_get at member N.
use_member() {
	export LXD_DIR
	LXD_DIR=$(cluster_member_dir "$1")
	GARM_TEST_API_SOCKET=$LXD_DIR/unix.socket
}

# Run a command for member N inside its network namespace: `lxd init` itself dials the
# cluster addresses, which exist only there.
member_exec() {
	local i=$1
	shift
	LXD_DIR=$(cluster_member_dir "$i") ip netns exec "$(cluster_member_netns "$i")" "$@"
}

# Prints the pid of member N's daemon; fails when it is not running.
member_pid() {
	local pid
	pid=$(cat "$(member_pidfile "$1")" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# A recycled pid, or another LXD daemon, does not count: ours has LXD_DIR=<member dir>.
	[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */lxd ]] || return 1
	grep -qzxF "LXD_DIR=$(cluster_member_dir "$1")" "/proc/$pid/environ" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}

member_in_its_netns() {
	local pid=$1 ns
	ns=$(cluster_member_netns "$2")
	[[ $(readlink "/proc/$pid/ns/net") == "net:[$(stat -L -c %i "/run/netns/$ns")]" ]]
}

# Whether member N's daemon answers on its socket (one shutting down does not).
member_answers() {
	curl -sf --max-time 10 --unix-socket "$(cluster_member_dir "$1")/unix.socket" \
		http://lxd/1.0 >/dev/null 2>&1
}

stop_member() {
	local i=$1 pid waited
	pid=$(member_pid "$i") || return 0
	log "stopping $(cluster_member_name "$i") (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	# A zombie (pid 1 may reap late) has no exe link; kill -0 would still succeed.
	for ((waited = 0; waited < 600; waited++)); do
		readlink "/proc/$pid/exe" >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

spawn_member() {
	local i=$1 dir log pidfile script
	dir=$(cluster_member_dir "$i")
	log=$(member_log "$i")
	pidfile=$(member_pidfile "$i")
	mkdir -p "$dir"
	chmod 0711 "$GARM_TEST_STATE_DIR" "$GARM_CLUSTER_DIR" "$dir"
	rm -f "$dir/unix.socket" "$pidfile"
	[[ -f $log ]] && mv -f "$log" "$log.1"
	script="set -e
$(daemon_preamble)
echo \$\$ >$(printf %q "$pidfile")
exec env -i PATH=$(printf %q "$PATH") LXD_DIR=$(printf %q "$dir") \
lxd --group root --logfile $(printf %q "$log")"
	log "starting $(cluster_member_name "$i") in netns $(cluster_member_netns "$i")"
	# Detached and holding none of our descriptors (stdout, locks), like lxd-up.sh's daemon.
	setsid -f ip netns exec "$(cluster_member_netns "$i")" unshare -m --propagation slave \
		sh -c "$script" </dev/null >>"$log" 2>&1 3>&- 8>&- 9>&-
}

# Start every member that is not running in its namespace, then wait for all of them: a
# clustered member only gets ready once a quorum of members is up.
start_members() {
	local i pid waited started=()
	for ((i = 1; i <= GARM_CLUSTER_SIZE; i++)); do
		if pid=$(member_pid "$i"); then
			member_in_its_netns "$pid" "$i" && member_answers "$i" && continue
			stop_member "$i"
		fi
		spawn_member "$i"
		started+=("$i")
	done
	((${#started[@]})) || return 0
	changed=1
	for i in "${started[@]}"; do
		for ((waited = 0; ; waited++)); do
			pid=$(member_pid "$i") && LXD_DIR=$(cluster_member_dir "$i") lxd waitready --timeout=1 \
				2>/dev/null && break
			if ((waited >= 120)) || { ((waited >= 5)) && ! member_pid "$i" >/dev/null; }; then
				tail -n 20 "$(member_log "$i")" >&2 || true
				die "$(cluster_member_name "$i") did not become ready; see $(member_log "$i")"
			fi
			sleep 0.2
		done
		check_daemon_cgroups "$pid"
	done
}

# Stop every member and delete its state. Instances are force-deleted first where the
# member still answers, so no container outlives its daemon.
wipe_members() {
	local i name
	for ((i = 1; i <= GARM_CLUSTER_SIZE; i++)); do
		if member_pid "$i" >/dev/null; then
			for name in $(LXD_DIR=$(cluster_member_dir "$i") timeout 30 lxc list --format csv \
				-c n 2>/dev/null); do
				LXD_DIR=$(cluster_member_dir "$i") timeout 30 lxc delete --force "$name" || true
			done
		fi
	done
	for ((i = 1; i <= GARM_CLUSTER_SIZE; i++)); do
		stop_member "$i"
		# What the daemon left in its namespace (dnsmasq, forkproxy, lxc monitors) goes too.
		ip netns pids "$(cluster_member_netns "$i")" 2>/dev/null | xargs -r kill -KILL 2>/dev/null ||
			true
		rm -rf "$(cluster_member_dir "$i")"
	done
}
