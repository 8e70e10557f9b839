# shellcheck shell=bash
# Names and addresses of the three-member test LXD cluster, in one place. Sourced by
# cluster-up.sh after lxd-env.sh, whose state and cache roots it shares.

GARM_CLUSTER_DIR=${GARM_TEST_CLUSTER_DIR:-$GARM_TEST_STATE_DIR/cluster}
# The namespace holding the plain Linux bridge that joins the members, like a switch.
# Namespaces: <prefix>net for that bridge, <prefix>N for member N.
GARM_CLUSTER_NETNS_PREFIX=${GARM_TEST_CLUSTER_NETNS_PREFIX:-garm-cl}
GARM_CLUSTER_NET_NETNS=${GARM_CLUSTER_NETNS_PREFIX}net
GARM_CLUSTER_NET_BRIDGE=clbr0
GARM_CLUSTER_PREFIX=10.163.0
GARM_CLUSTER_PORT=8443
GARM_CLUSTER_SIZE=3
# The managed bridge every member gets (its own copy, in its own namespace) for instances.
GARM_CLUSTER_BRIDGE=garmclbr0
GARM_CLUSTER_BRIDGE_ADDRESS=10.164.0.1/24
# Cluster groups: g1 = member1, g2 = member2 + member3 (all also stay in "default").
declare -A GARM_CLUSTER_GROUPS=([member1]="default,g1" [member2]="default,g2" [member3]="default,g2")

# Member N (1-based): its name, network namespace, LXD_DIR and cluster address.
cluster_member_name() { printf 'member%s\n' "$1"; }
cluster_member_netns() { printf '%s%s\n' "$GARM_CLUSTER_NETNS_PREFIX" "$1"; }
cluster_member_dir() { printf '%s/member%s\n' "$GARM_CLUSTER_DIR" "$1"; }
cluster_member_address() { printf '%s.%s\n' "$GARM_CLUSTER_PREFIX" "$((10 + $1))"; }
