#!/usr/bin/env bash
# Build the ~1 MB "busybox" test image (LXD unified tarball) from busybox-static.
# Usage: busybox-image.sh OUTPUT.tar.gz
# The output is reproducible (fixed times, owners and order), so its LXD fingerprint
# only changes when this recipe, busybox-rootfs/ or the busybox binary changes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
output=${1:?usage: busybox-image.sh OUTPUT.tar.gz}
busybox=/bin/busybox
arch=$(uname -m)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,root,var/run}
install -m 0755 -d "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
install -m 0755 "$busybox" "$rootfs/bin/busybox"
while read -r applet; do
	[[ -e "$rootfs/$applet" ]] || ln -s /bin/busybox "$rootfs/$applet"
done < <("$busybox" --list-full)
cp -R "$here/busybox-rootfs/." "$rootfs/"
chmod -R u+rwX,go+rX,go-w "$rootfs/etc" "$rootfs/usr/share"

cat >"$work/metadata.yaml" <<META
architecture: $arch
creation_date: 1700000000
properties:
  architecture: $arch
  description: BusyBox 1.35 test image (garm-provider-lxd tests)
  os: busybox
  release: "1.35"
templates: {}
META

tar -C "$work" --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner \
	--format=gnu -cf - metadata.yaml rootfs | gzip -n -9 >"$output.tmp.$$"
mv "$output.tmp.$$" "$output"
