#!/usr/bin/env bash
# Stop everything tests/run.sh and tests/demo.sh started: the private LXD daemon, the Incus
# daemon, the three cluster members (their instances are shut down first), whatever is left in
# their network namespaces (dnsmasq, forkproxy), and the namespaces themselves. Idempotent.
#
#   tests/env/down.sh            stop; keep the state and the build cache (the next run is fast)
#   tests/env/down.sh --purge    stop, then delete the state and the build cache as well
#
# Prints what it leaves on disk and how to remove it. Honours the same overrides as the -up
# scripts (GARM_TEST_LXD_DIR, GARM_TEST_NETNS, GARM_TEST_INCUS_NETNS,
# GARM_TEST_CLUSTER_NETNS_PREFIX, GARM_TEST_CACHE_DIR), so a scratch environment can be
# stopped without touching the default one.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

# Before anything else: a mistyped argument must not stop anything.
purge=0
case "${1:-}" in
--purge) purge=1 ;;
"") ;;
*)
	echo "usage: tests/env/down.sh [--purge]" >&2
	exit 2
	;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lxd-env.sh"
source "$here/lxd-lib.sh"
source "$here/incus/incus-env.sh"
source "$here/cluster/cluster-env.sh"
source "$here/cluster/members.sh"

# Waits up to $2 tenths of a second for pid $1 to exit (a zombie has no exe link).
gone_within() {
	local pid=$1 tries=$2
	while ((tries-- > 0)); do
		readlink "/proc/$pid/exe" >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	! readlink "/proc/$pid/exe" >/dev/null 2>&1
}

# Stops daemon pid $1 with its own clean shutdown (the rest of the arguments; it stops the
# instances first), else SIGTERM, else SIGKILL.
stop_daemon() {
	local pid=$1
	shift
	timeout 150 "$@" >/dev/null 2>&1 9>&- || true
	gone_within "$pid" 100 && return 0
	log "clean shutdown of pid $pid did not finish; terminating it"
	kill -TERM "$pid" 2>/dev/null || true
	gone_within "$pid" 100 && return 0
	kill -KILL "$pid" 2>/dev/null || true
	gone_within "$pid" 100
}

# Kills what is left in network namespace $1 and deletes it.
drop_netns() {
	local ns=$1
	[[ -e /run/netns/$ns ]] || return 0
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	ip netns delete "$ns"
	log "deleted network namespace $ns"
}

stopped=0

"$here/lxd-down.sh"

if pid=$(incus_daemon_pid); then
	log "stopping Incus (pid $pid) and its instances"
	if command -v incus >/dev/null; then
		stop_daemon "$pid" incus admin shutdown --timeout=120
	else
		stop_daemon "$pid" kill -TERM "$pid"
	fi
	rm -f "$GARM_INCUS_PIDFILE"
	stopped=1
fi

# The members stop together: one at a time, the last ones would wait for a quorum.
members=()
for ((i = 1; i <= GARM_CLUSTER_SIZE; i++)); do
	if pid=$(member_pid "$i"); then
		log "stopping $(cluster_member_name "$i") (pid $pid) and its instances"
		LXD_DIR=$(cluster_member_dir "$i") stop_daemon "$pid" lxd shutdown --timeout=120 &
		members+=($!)
	fi
done
for job in "${members[@]}"; do wait "$job" || true; done
if ((${#members[@]})); then stopped=1; fi

for ns in "$GARM_TEST_NETNS" "$GARM_INCUS_NETNS" "$GARM_CLUSTER_NET_NETNS"; do
	drop_netns "$ns"
done
for ((i = 1; i <= GARM_CLUSTER_SIZE; i++)); do
	drop_netns "$(cluster_member_netns "$i")"
done
if ((!stopped)); then log "Incus and the cluster were not running"; fi

size() { du -sh "$1" 2>/dev/null | cut -f1; }
if ((purge)); then
	for dir in "$GARM_TEST_STATE_DIR" "$GARM_TEST_CACHE_DIR"; do
		[[ -d $dir ]] || continue
		# Daemons mount inside their own mount namespaces; anything still mounted here is not ours
		# to delete through.
		if grep -q " ${dir}[/ ]" /proc/self/mountinfo; then
			die "$dir still has mounts (see findmnt -R $dir); not deleting it"
		fi
		rm -rf --one-file-system "$dir"
		log "deleted $dir"
	done
else
	log "left on disk (tests/env/down.sh --purge deletes both; the next run then rebuilds them):"
	if [[ -d $GARM_TEST_STATE_DIR ]]; then
		log "  $GARM_TEST_STATE_DIR ($(size "$GARM_TEST_STATE_DIR")): the daemons' instances," \
			"images and databases; the -up scripts start from them"
	fi
	if [[ -d $GARM_TEST_CACHE_DIR ]]; then
		log "  $GARM_TEST_CACHE_DIR ($(size "$GARM_TEST_CACHE_DIR")): cargo and wheel builds," \
			"the build venv, the test image tarballs"
	fi
fi
log "also left: the checkout's .venv and dist/ (git clean -fdX removes them), the apt packages" \
	"the scripts installed (${GARM_TEST_PACKAGES[*]} btrfs-progs python3-venv incus-base" \
	"incus-client) and /etc/apt/sources.list.d/$GARM_INCUS_SUITE.sources if it was added"
log "stopped"
