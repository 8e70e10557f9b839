#!/usr/bin/env bash
# Bring up a private Incus daemon (Debian bookworm-backports) next to the test LXD daemon.
# Same recipe as lxd-up.sh, whose steps (lxd-lib.sh) this script reuses with `lxc` pointed at
# the Incus client: own network namespace (garm-incus) with the host's cgroup layout mirrored,
# own state dir, bridge garmbr1 10.162.0.1/24 without NAT, a `dir` pool, the default profile
# and the busybox image. Idempotent and fast when already up. Progress goes to stderr; stdout
# carries only KEY=VALUE lines, INCUS_SOCKET last. GARM_TEST_INCUS_SELFTEST=1 forces the
# container boot check on the fast path too.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/env/lxd-env.sh
source "$here/lxd-env.sh"
# shellcheck source=tests/env/lxd-lib.sh
source "$here/lxd-lib.sh"
# shellcheck source=tests/env/incus/incus-env.sh
source "$here/incus/incus-env.sh"

lxc() { incus "$@"; }

# The steps borrowed from lxd-lib.sh read these names; point them at the Incus setup.
GARM_TEST_NETNS=$GARM_INCUS_NETNS
GARM_TEST_BRIDGE=$GARM_INCUS_BRIDGE
GARM_TEST_BRIDGE_ADDRESS=$GARM_INCUS_BRIDGE_ADDRESS
GARM_TEST_API_SOCKET=$GARM_INCUS_SOCKET

exec 3>&1 1>&2
mkdir -p "$GARM_TEST_STATE_DIR"
exec 9>"$GARM_TEST_STATE_DIR/incus-up.lock"
flock -w 600 9 || die "another run held $GARM_TEST_STATE_DIR/incus-up.lock for 10 minutes"

changed=0

# Only incus-base (daemon, containers) and incus-client come from backports; their two
# backports-only libraries (libcowsql0, libraft0 0.22) are what apt pulls in from there.
# The `incus` package would add QEMU for VMs, which cannot run on this machine.
ensure_incus_packages() {
	local missing=() package
	for package in incus-base incus-client "${GARM_TEST_PACKAGES[@]}"; do
		[[ $package == lxd || $package == lxd-client ]] && continue
		dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -qx installed ||
			missing+=("$package")
	done
	((${#missing[@]})) || return 0
	ensure_backports_source
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq 3>&- 9>&-
	local targets=()
	for package in "${missing[@]}"; do
		case $package in
		incus-base | incus-client) targets+=("$package/$GARM_INCUS_SUITE") ;;
		*) targets+=("$package") ;;
		esac
	done
	apt-get install -y -qq --no-install-recommends "${targets[@]}" 3>&- 9>&-
	disable_distro_incus
	changed=1
}

ensure_backports_source() {
	if grep -rqs "$GARM_INCUS_SUITE" /etc/apt/sources.list /etc/apt/sources.list.d/; then
		return 0
	fi
	log "adding the $GARM_INCUS_SUITE apt source"
	# Backports are NotAutomatic: nothing else is upgraded from there unless asked for by name.
	cat >"/etc/apt/sources.list.d/$GARM_INCUS_SUITE.sources" <<-EOF
		Types: deb
		URIs: http://deb.debian.org/debian
		Suites: $GARM_INCUS_SUITE
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
}

# The package enables a socket-activated daemon on /var/lib/incus in the host's network
# namespace; only our private daemon may run. Where systemd is absent nothing was started
# (invoke-rc.d), and the sysv scripts are switched off so a later boot does not start them.
disable_distro_incus() {
	local unit
	if [[ -d /run/systemd/system ]]; then
		for unit in incus.socket incus.service incus-startup.service incus-user.socket \
			incus-user.service; do
			log "disabling Debian's $unit"
			systemctl disable --now "$unit" 3>&- 9>&- || true
		done
	elif command -v update-rc.d >/dev/null; then
		for unit in incus incus-startup incus-user; do
			update-rc.d "$unit" disable >/dev/null 2>&1 || true
		done
	fi
}

# Run a daemon in its own session holding none of our file descriptors but a log: not the
# caller's pipes (so callers capturing our output never wait on it) and not our lock.
spawn_detached() {
	local log=$1 fd
	shift
	(
		for fd in /proc/"$BASHPID"/fd/*; do
			fd=${fd##*/}
			((fd > 2)) && eval "exec $fd>&-"
		done
		exec setsid -f "$@"
	) </dev/null >>"$log" 2>&1
}

incus_ready() { incus admin waitready --timeout="$1" >/dev/null 2>&1; }

start_incus() {
	local script pid waited
	mkdir -p "$INCUS_DIR"
	chmod 0711 "$GARM_TEST_STATE_DIR" "$INCUS_DIR"
	rm -f "$GARM_INCUS_SOCKET" "$GARM_INCUS_PIDFILE"
	[[ -f $GARM_INCUS_LOG ]] && mv -f "$GARM_INCUS_LOG" "$GARM_INCUS_LOG.1"
	script="set -e
$(daemon_preamble)
echo \$\$ >$(printf %q "$GARM_INCUS_PIDFILE")
exec env -i PATH=$(printf %q "$GARM_INCUS_PATH") INCUS_DIR=$(printf %q "$INCUS_DIR") \
incusd --group root --logfile $(printf %q "$GARM_INCUS_LOG")"
	log "starting Incus in netns $GARM_INCUS_NETNS (state in $INCUS_DIR)"
	spawn_detached "$GARM_INCUS_LOG" ip netns exec "$GARM_INCUS_NETNS" \
		unshare -m --propagation slave sh -c "$script"
	for ((waited = 0; ; waited++)); do
		if pid=$(incus_daemon_pid) && incus_ready 1; then
			break
		fi
		((waited < 120)) || die "Incus did not become ready in 120 s; see $GARM_INCUS_LOG"
		if ((waited >= 3)) && ! pid=$(incus_daemon_pid); then
			tail -n 20 "$GARM_INCUS_LOG" >&2 || true
			die "Incus exited during start; see $GARM_INCUS_LOG"
		fi
		sleep 0.2
	done
	log "Incus is ready (pid $pid)"
	changed=1
}

ensure_incus_daemon() {
	local pid netns
	netns="net:[$(stat -L -c %i "/run/netns/$GARM_INCUS_NETNS")]"
	if pid=$(incus_daemon_pid); then
		if [[ $(readlink "/proc/$pid/ns/net") != "$netns" ]]; then
			log "Incus (pid $pid) runs outside netns $GARM_INCUS_NETNS; stopping it"
			incus admin shutdown --timeout=60 || kill -TERM "$pid" 2>/dev/null || true
			# A zombie (pid 1 here may reap late) has no exe link; kill -0 would still succeed.
			while readlink "/proc/$pid/exe" >/dev/null 2>&1; do sleep 0.2; done
			start_incus
		elif ! server_get /internal/ready >/dev/null 2>&1 && ! incus_ready 120; then
			die "Incus (pid $pid) is not answering; see $GARM_INCUS_LOG"
		fi
	else
		start_incus
	fi
	check_daemon_cgroups "$(incus_daemon_pid)"
}

# lxd-up.sh may be building the same cached image tarball right now: build it under its lock.
ensure_shared_image() {
	(
		exec 8>"$GARM_TEST_STATE_DIR/lxd-up.lock"
		flock -w 600 8 || die "lxd-up.sh held its lock for 10 minutes"
		ensure_image
		exit $((changed ? 10 : 0))
	) || { (($? == 10)) && changed=1; } || return 1
}

# Which of the API extensions the provider branches on this server has (docs/clusters-and-incus.md, "What differs for the provider").
relevant_extensions() {
	local have extension present=()
	have=$(server_get /1.0)
	printf '%s\n' "$have" >"$GARM_INCUS_SERVER_JSON"
	for extension in "${GARM_INCUS_EXTENSIONS[@]}"; do
		[[ $have == *"\"$extension\""[],]* ]] && present+=("$extension")
	done
	local IFS=,
	printf '%s\n' "${present[*]}"
}

main() {
	ensure_incus_packages
	ensure_netns
	ensure_incus_daemon
	prefetch "/1.0/storage-pools/$GARM_TEST_POOL" "/1.0/networks/$GARM_TEST_BRIDGE" \
		"/1.0/profiles/$GARM_TEST_PROFILE"
	ensure_pool "${prefetched[0]}"
	ensure_bridge "${prefetched[1]}"
	ensure_profile "${prefetched[2]}"
	ensure_shared_image
	if ((changed)) || [[ ${GARM_TEST_INCUS_SELFTEST:-0} == 1 ]]; then
		selftest
	fi
	printf '%s=%s\n' \
		INCUS_DIR "$INCUS_DIR" \
		INCUS_NETNS "$GARM_INCUS_NETNS" \
		INCUS_BRIDGE "$GARM_INCUS_BRIDGE" \
		INCUS_POOL "$GARM_TEST_POOL" \
		INCUS_PROFILE "$GARM_TEST_PROFILE" \
		INCUS_IMAGE "$GARM_TEST_IMAGE" \
		INCUS_EXTENSIONS "$(relevant_extensions)" \
		INCUS_SOCKET "$GARM_INCUS_SOCKET" >&3
}

main "$@"
