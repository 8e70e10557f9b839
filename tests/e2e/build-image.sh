#!/bin/bash
# Build (once) and import (when missing or outdated) the cloud-init container
# image the end-to-end tests boot: Debian bookworm minbase with systemd and
# cloud-init, packaged as an LXD unified image whose templates render the
# instance's user data into cloud-init's NoCloud seed directory on create.
#
#   tests/e2e/build-image.sh [--no-import] [--alias NAME]
#
# The tarball is cached in $GARM_E2E_IMAGE_CACHE (default
# /var/cache/garm-provider-lxd-test/images) under a hash of this script and
# tests/e2e/image/; it is rebuilt only when that recipe changes. The image is
# imported into the LXD daemon selected by LXD_DIR (the test daemon's state
# directory) unless --no-import is given. Prints the cached tarball's path.
# Idempotent and safe to run concurrently (one build at a time, by lock).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RECIPE_DIR="$HERE/image"
CACHE="${GARM_E2E_IMAGE_CACHE:-/var/cache/garm-provider-lxd-test/images}"
ALIAS="garm-cloudinit"
IMPORT=1
PACKAGES="systemd,systemd-sysv,cloud-init,python3-cffi-backend,curl,sudo,ca-certificates"
PACKAGES+=",iproute2,ifupdown,isc-dhcp-client,netbase"

while [ $# -gt 0 ]; do
	case "$1" in
	--no-import) IMPORT=0 ;;
	--alias) ALIAS="$2"; shift ;;
	*) echo "usage: $0 [--no-import] [--alias NAME]" >&2; exit 2 ;;
	esac
	shift
done

log() { echo "build-image: $*" >&2; }

# The recipe is this script plus every file under image/; any change to
# either gives a new cache key and so a rebuild.
recipe_hash() {
	(
		cd "$HERE"
		sha256sum build-image.sh
		find image -type f | LC_ALL=C sort | xargs sha256sum
	) | sha256sum | cut -c1-16
}

# The Debian mirror apt already uses here (deb822 or one-line sources).
debian_mirror() {
	local uri
	uri="$(grep -hE '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		head -n1 | awk '{print $2}')"
	if [ -z "$uri" ]; then
		uri="$(grep -hE '^deb .*/debian/? bookworm' /etc/apt/sources.list \
			/etc/apt/sources.list.d/*.list 2>/dev/null | head -n1 | awk '{print $2}')"
	fi
	echo "${uri:-http://deb.debian.org/debian}"
}

configure_rootfs() {
	local root="$1"
	install -m 0644 "$RECIPE_DIR/99-garm-e2e.cfg" "$root/etc/cloud/cloud.cfg.d/99-garm-e2e.cfg"
	install -m 0644 "$RECIPE_DIR/interfaces" "$root/etc/network/interfaces"
	install -m 0644 "$RECIPE_DIR/99-offline.conf" "$root/etc/apt/apt.conf.d/99-offline"

	# Units that cannot work or only cost time in a container.
	local unit
	for unit in systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
		apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
		getty@tty1.service console-getty.service e2scrub_all.timer e2scrub_reap.service \
		fstrim.timer; do
		ln -sfn /dev/null "$root/etc/systemd/system/$unit"
	done
	rm -f "$root"/etc/systemd/system/timers.target.wants/apt-daily*.timer
	rm -f "$root/etc/systemd/system/getty.target.wants/getty@tty1.service"

	# Offline image: no package sources, so cloud-init's package steps
	# (update, upgrade, install of what is already here) succeed at once.
	: >"$root/etc/apt/sources.list"
	rm -f "$root"/etc/apt/sources.list.d/*
	chroot "$root" apt-get clean
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin

	# Per-instance identity is made at first boot, never baked in.
	: >"$root/etc/machine-id"
	rm -f "$root/var/lib/dbus/machine-id"
	rm -rf "$root"/var/lib/cloud/*
	rm -f "$root/etc/resolv.conf"
	echo localhost >"$root/etc/hostname"
	find "$root/var/log" -type f -delete
}

write_metadata() {
	local dir="$1" seed=/var/lib/cloud/seed/nocloud-net
	cp -r "$RECIPE_DIR/templates" "$dir/templates"
	cat >"$dir/metadata.yaml" <<EOF
architecture: x86_64
creation_date: $(date +%s)
properties:
  os: debian
  release: bookworm
  variant: cloud
  description: Debian bookworm cloud-init test image (garm-provider-lxd e2e)
templates:
  $seed/user-data:
    when: [create, copy]
    template: cloud-init-user-data.tpl
    properties:
      default: |
        #cloud-config
        {}
  $seed/vendor-data:
    when: [create, copy]
    template: cloud-init-vendor-data.tpl
    properties:
      default: |
        #cloud-config
        {}
  $seed/meta-data:
    when: [create, copy]
    template: cloud-init-meta-data.tpl
  $seed/network-config:
    when: [create, copy]
    template: cloud-init-network-config.tpl
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /etc/hosts:
    when: [create, copy]
    template: hosts.tpl
EOF
}

ensure_tools() {
	command -v debootstrap >/dev/null && return 0
	log "installing debootstrap"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

build() {
	local out="$1" work
	ensure_tools
	work="$(mktemp -d "$CACHE/build.XXXXXX")"
	# shellcheck disable=SC2064 # expand now: the trap must remove this build's dir
	trap "rm -rf '$work'" EXIT
	local mirror
	mirror="$(debian_mirror)"
	log "debootstrap bookworm from $mirror"
	debootstrap --variant=minbase --include="$PACKAGES" bookworm "$work/rootfs" "$mirror" \
		>"$work/debootstrap.log" 2>&1 || {
		tail -n 30 "$work/debootstrap.log" >&2
		exit 1
	}
	configure_rootfs "$work/rootfs"
	write_metadata "$work"
	log "packing $out"
	tar -C "$work" --numeric-owner --xattrs -czf "$work/image.tar.gz" \
		metadata.yaml templates rootfs
	sha256sum "$work/image.tar.gz" | cut -d' ' -f1 >"$out.sha256"
	mv "$work/image.tar.gz" "$out"
	rm -rf "$work"
	trap - EXIT
}

lxc_cmd() {
	LXD_CONF="$CACHE/.lxc-client" lxc "$@"
}

import_image() {
	local tarball="$1" want have
	want="$(cat "$tarball.sha256")"
	have="$(lxc_cmd image info "$ALIAS" 2>/dev/null | awk '/^Fingerprint:/ {print $2}')" || true
	if [ "$have" = "$want" ]; then
		log "alias $ALIAS is current ($want)"
		return
	fi
	if ! lxc_cmd image info "$want" >/dev/null 2>&1; then
		lxc_cmd image import "$tarball" >/dev/null
	fi
	if [ -n "$have" ]; then
		log "alias $ALIAS points at $have: replacing"
		lxc_cmd image alias delete "$ALIAS" >/dev/null 2>&1 || true
		# An outdated image is never used again (containers keep their own copy).
		lxc_cmd image delete "$have" >/dev/null 2>&1 || true
	fi
	lxc_cmd image alias create "$ALIAS" "$want" >/dev/null
	log "imported $ALIAS ($want)"
}

main() {
	mkdir -p "$CACHE"
	local key tarball
	key="$(recipe_hash)"
	tarball="$CACHE/garm-cloudinit-$key.tar.gz"
	exec 9>"$CACHE/.lock"
	flock 9
	if [ ! -s "$tarball" ] || [ ! -s "$tarball.sha256" ]; then
		build "$tarball"
		# Tarballs of older recipes are never used again.
		find "$CACHE" -maxdepth 1 -name 'garm-cloudinit-*.tar.gz*' \
			! -name "garm-cloudinit-$key.tar.gz*" -delete
	else
		log "cached $tarball"
	fi
	if [ "$IMPORT" = 1 ]; then
		import_image "$tarball"
	fi
	echo "$tarball"
}

main
