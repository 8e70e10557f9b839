#!/usr/bin/env bash
# Bring up a three-member LXD cluster on this machine for placement tests.
# Each member is its own LXD daemon (own LXD_DIR, own network namespace garm-clN with the
# host's cgroup layout mirrored, as lxd-up.sh does); the members talk cluster HTTPS over
# 10.163.0.11-13, veth pairs into a plain bridge in namespace garm-clnet. Cluster-wide: a
# `dir` pool, a managed bridge garmclbr0 (10.164.0.1/24 on every member, no NAT), the default
# profile on it, groups g1 = member1 and g2 = member2 + member3, and the busybox image.
# Idempotent and fast when already up; a cluster found half-formed is rebuilt from scratch.
# Progress goes to stderr; stdout carries only KEY=VALUE lines, CLUSTER_SOCKET last.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/env/lxd-env.sh
source "$here/lxd-env.sh"
# shellcheck source=tests/env/lxd-lib.sh
source "$here/lxd-lib.sh"
# shellcheck source=tests/env/cluster/cluster-env.sh
source "$here/cluster/cluster-env.sh"
# shellcheck source=tests/env/cluster/members.sh
source "$here/cluster/members.sh"

exec 3>&1 1>&2
mkdir -p "$GARM_CLUSTER_DIR"
exec 9>"$GARM_TEST_STATE_DIR/cluster-up.lock"
flock -w 600 9 || die "another run held $GARM_TEST_STATE_DIR/cluster-up.lock for 10 minutes"

changed=0

# The lxd-lib.sh steps (image, pool checks) act on member1, which speaks for the cluster.
use_member 1

ensure_cluster_network() {
	local i ns peer address
	GARM_TEST_NETNS=$GARM_CLUSTER_NET_NETNS ensure_netns
	if ! ip -n "$GARM_CLUSTER_NET_NETNS" link show "$GARM_CLUSTER_NET_BRIDGE" >/dev/null 2>&1; then
		log "creating bridge $GARM_CLUSTER_NET_BRIDGE in netns $GARM_CLUSTER_NET_NETNS"
		ip -n "$GARM_CLUSTER_NET_NETNS" link add "$GARM_CLUSTER_NET_BRIDGE" type bridge
		changed=1
	fi
	ip -n "$GARM_CLUSTER_NET_NETNS" link set "$GARM_CLUSTER_NET_BRIDGE" up
	for ((i = 1; i <= GARM_CLUSTER_SIZE; i++)); do
		ns=$(cluster_member_netns "$i")
		peer=cl$i
		address=$(cluster_member_address "$i")
		GARM_TEST_NETNS=$ns ensure_netns
		if ip -n "$ns" -br addr show dev clnet0 2>/dev/null | grep -q " UP .*$address/24" &&
			ip -n "$GARM_CLUSTER_NET_NETNS" -d link show "$peer" 2>/dev/null |
			grep -q "master $GARM_CLUSTER_NET_BRIDGE .*state UP\|state UP.*master $GARM_CLUSTER_NET_BRIDGE"; then
			continue
		fi
		log "wiring $ns ($address) to $GARM_CLUSTER_NET_NETNS"
		ip -n "$ns" link del clnet0 2>/dev/null || true
		ip -n "$GARM_CLUSTER_NET_NETNS" link del "$peer" 2>/dev/null || true
		ip link add clnet0 netns "$ns" type veth peer name "$peer" netns "$GARM_CLUSTER_NET_NETNS"
		ip -n "$ns" addr add "$address/24" dev clnet0
		ip -n "$ns" link set clnet0 up
		ip -n "$GARM_CLUSTER_NET_NETNS" link set "$peer" master "$GARM_CLUSTER_NET_BRIDGE" up
		changed=1
	done
}

# Prints the members member1 knows with their status, one "name status" a line.
member_statuses() {
	server_get "/1.0/cluster/members?recursion=1" 2>/dev/null | sed 's/.*"metadata"://' |
		grep -o '"server_name":"[^"]*"\|"status":"[^"]*"' |
		sed 's/.*:"\(.*\)"/\1/' | paste -d' ' - - || true
}

# Whether every member is clustered and member1 lists exactly the expected members.
cluster_complete() {
	local i statuses
	for ((i = 1; i <= GARM_CLUSTER_SIZE; i++)); do
		curl -sf --unix-socket "$(cluster_member_dir "$i")/unix.socket" http://lxd/1.0/cluster \
			2>/dev/null | grep -q '"enabled":true' || return 1
	done
	statuses=$(member_statuses)
	for ((i = 1; i <= GARM_CLUSTER_SIZE; i++)); do
		grep -q "^$(cluster_member_name "$i") " <<<"$statuses" || return 1
	done
	[[ $(wc -l <<<"$statuses") -eq $GARM_CLUSTER_SIZE ]]
}

# Wait (up to $1 s) until member1 sees every member online; restarted members are marked
# online by the leader's next heartbeat, some seconds after they answer.
cluster_online() {
	local deadline=$((SECONDS + $1))
	while [[ $(member_statuses | grep -c ' Online$') -ne $GARM_CLUSTER_SIZE ]]; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
}

bootstrap_preseed() {
	cat <<-EOF
		config:
		  core.https_address: $(cluster_member_address 1):$GARM_CLUSTER_PORT
		storage_pools:
		- name: $GARM_TEST_POOL
		  driver: dir
		profiles:
		- name: $GARM_TEST_PROFILE
		  devices:
		    root: {path: /, pool: $GARM_TEST_POOL, type: disk}
		cluster:
		  server_name: $(cluster_member_name 1)
		  enabled: true
	EOF
}

join_preseed() {
	local i=$1 token=$2
	cat <<-EOF
		cluster:
		  enabled: true
		  server_name: $(cluster_member_name "$i")
		  server_address: $(cluster_member_address "$i"):$GARM_CLUSTER_PORT
		  cluster_token: $token
		  member_config:
		  - entity: storage-pool
		    name: $GARM_TEST_POOL
		    key: source
		    value: ""
	EOF
}

join_token() {
	local name=$1
	lxc cluster revoke-token "$name" >/dev/null 2>&1 || true
	lxc cluster add "$name" | tail -n 1
}

build_cluster() {
	local i token
	log "building the cluster from scratch"
	if compgen -G "$GARM_CLUSTER_DIR/member*/cluster.crt" >/dev/null; then
		wipe_members
		start_members
	fi
	bootstrap_preseed | member_exec 1 lxd init --preseed
	for ((i = 2; i <= GARM_CLUSTER_SIZE; i++)); do
		token=$(join_token "$(cluster_member_name "$i")")
		log "joining $(cluster_member_name "$i")"
		join_preseed "$i" "$token" | member_exec "$i" lxd init --preseed
	done
	changed=1
}

# A cluster network is created pending on every member first, then for real. (A network in
# the bootstrap preseed fails on LXD 5.0: "Failed to update local member network".)
ensure_cluster_bridge() {
	local i current config=()
	current=$(server_get "/1.0/networks/$GARM_CLUSTER_BRIDGE" 2>/dev/null) || true
	[[ $current == *'"managed":true'*'"status":"Created"'* ]] && return 0
	log "creating cluster network $GARM_CLUSTER_BRIDGE"
	if [[ $current == *'"managed":true'* ]]; then
		# Defined but errored on some member: a create without config retries the members.
		lxc network create "$GARM_CLUSTER_BRIDGE"
		changed=1
		return 0
	fi
	for ((i = 1; i <= GARM_CLUSTER_SIZE; i++)); do
		# A bridge left behind by a failed attempt would make LXD see an unmanaged interface.
		ip -n "$(cluster_member_netns "$i")" link del "$GARM_CLUSTER_BRIDGE" 2>/dev/null || true
		lxc network create "$GARM_CLUSTER_BRIDGE" --target "$(cluster_member_name "$i")" \
			>/dev/null 2>&1 || true
	done
	config=(ipv4.address="$GARM_CLUSTER_BRIDGE_ADDRESS" ipv4.nat=false ipv6.address=none)
	lxc network create "$GARM_CLUSTER_BRIDGE" "${config[@]}"
	changed=1
}

ensure_groups() {
	local group name member current
	for group in g1 g2; do
		server_get "/1.0/cluster/groups/$group" >/dev/null 2>&1 && continue
		log "creating cluster group $group"
		lxc cluster group create "$group" >/dev/null
		changed=1
	done
	for name in "${!GARM_CLUSTER_GROUPS[@]}"; do
		member=$(server_get "/1.0/cluster/members/$name")
		current=$(sed -n 's/.*"groups":\[\([^]]*\)\].*/\1/p' <<<"$member" | tr -d '"')
		[[ $current == "${GARM_CLUSTER_GROUPS[$name]}" ]] && continue
		log "assigning $name to groups ${GARM_CLUSTER_GROUPS[$name]}"
		lxc cluster group assign "$name" "${GARM_CLUSTER_GROUPS[$name]}"
		changed=1
	done
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

# Boot one container on the last member (so the image travels between members) and wait for
# its address on that member's bridge.
cluster_selftest() {
	local name=$GARM_TEST_SELFTEST_INSTANCE target tries address=""
	target=$(cluster_member_name "$GARM_CLUSTER_SIZE")
	# Right after a member restarts, operations it runs for others may briefly be unknown
	# to them ("Operation not found"): try again.
	for ((tries = 1; ; tries++)); do
		lxc delete --force "$name" >/dev/null 2>&1 || true
		lxc launch "$GARM_TEST_IMAGE" "$name" --target "$target" >/dev/null && break
		((tries < 5)) || die "cannot launch a container on $target"
		sleep 2
	done
	for ((tries = 0; tries < 300; tries++)); do
		address=$(server_get "/1.0/instances/$name/state" |
			grep -o "\"address\":\"${GARM_CLUSTER_BRIDGE_ADDRESS%.*}\.[0-9]*\"" | head -n 1) || true
		[[ -n $address ]] && break
		sleep 0.1
	done
	lxc delete --force "$name"
	[[ -n $address ]] || die "container $name on $target got no address in 30 s"
	log "self-test: container on $target booted and got ${address#*:}"
}

main() {
	local i sockets=() addresses=()
	ensure_packages
	ensure_cluster_network
	start_members
	if ! cluster_complete || ! cluster_online 60; then
		build_cluster
	fi
	cluster_online 60 || die "the cluster did not form: $(member_statuses | tr '\n' ' ')"
	ensure_cluster_bridge
	GARM_TEST_BRIDGE=$GARM_CLUSTER_BRIDGE ensure_profile
	ensure_groups
	ensure_shared_image
	if ((changed)) || [[ ${GARM_TEST_CLUSTER_SELFTEST:-0} == 1 ]]; then
		cluster_selftest
	fi
	for ((i = 1; i <= GARM_CLUSTER_SIZE; i++)); do
		sockets+=("$(cluster_member_dir "$i")/unix.socket")
		addresses+=("$(cluster_member_address "$i"):$GARM_CLUSTER_PORT")
	done
	local IFS=,
	printf '%s=%s\n' \
		CLUSTER_DIR "$GARM_CLUSTER_DIR" \
		CLUSTER_MEMBERS "member1,member2,member3" \
		CLUSTER_ADDRESSES "${addresses[*]}" \
		CLUSTER_SOCKETS "${sockets[*]}" \
		CLUSTER_GROUPS "g1=member1;g2=member2+member3" \
		CLUSTER_BRIDGE "$GARM_CLUSTER_BRIDGE" \
		CLUSTER_POOL "$GARM_TEST_POOL" \
		CLUSTER_PROFILE "$GARM_TEST_PROFILE" \
		CLUSTER_IMAGE "$GARM_TEST_IMAGE" \
		CLUSTER_SOCKET "${sockets[0]}" >&3
}

main "$@"
