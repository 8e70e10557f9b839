# shellcheck shell=bash
# Load the functions and names of ../lxd-up.sh without running it, so the Incus and cluster
# environments reuse its steps (cgroup mirroring, netns, pool, bridge, profile, image) as is.
# lxd-up.sh ends with `main "$@"`; that line is dropped and its `here` is pinned to tests/env.

garm_env_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1090
source <(sed -e "s|^here=.*\$|here=$(printf %q "$garm_env_dir")|" -e '/^main "\$@"$/d' \
	"$garm_env_dir/lxd-up.sh")
