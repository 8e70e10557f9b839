#!/bin/bash
# Waits for cloud-init, then leaves the instance as a fresh image: no cloud-init state, no
# machine id, powered off.
set -o nounset
STATE=@@STATE@@
fail() {
	printf '%s\n' "$1" > "${STATE}/failed.tmp"
	mv -f "${STATE}/failed.tmp" "${STATE}/failed"
	exit 1
}
cloud-init status --wait > /dev/null 2>&1
rc=$?
# 0: done; 2 (cloud-init >= 23.4): done with recoverable errors such as deprecation warnings.
if [ "$rc" = 1 ]; then
	errors=$(python3 -c 'import json, sys; v1 = json.load(sys.stdin)["v1"]
print("; ".join(map(str, v1["errors"])))' < /run/cloud-init/result.json 2> /dev/null)
	fail "cloud-init finished with errors: ${errors:-see /var/log/cloud-init.log}"
fi
printf 'sealing\n' > "${STATE}/step"
rm -rf "$STATE"
cloud-init clean --logs --seed > /dev/null 2>&1 || cloud-init clean --logs > /dev/null 2>&1
if [ -f /etc/machine-id ]; then
	: > /etc/machine-id
fi
if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
	rm -f /var/lib/dbus/machine-id
fi
sync
systemctl poweroff || poweroff
