#!/usr/bin/env bash
# Build the lab's base image: a Debian rootfs from debootstrap, imported into Docker.
# No registry can be pulled from here, so every lab image starts from this one.
set -euo pipefail

image="${1:?usage: build.sh IMAGE[:TAG] [SUITE]}"
suite="${2:-trixie}"
mirror="${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image already present"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  else
    echo "debootstrap is missing: install it (apt-get install debootstrap) as root, then re-run" >&2
    exit 2
  fi
fi

workdir="$(mktemp -d /var/tmp/odoo-mig-rootfs.XXXXXX)"
trap 'rm -rf "$workdir"' EXIT

debootstrap --variant=minbase --include=ca-certificates,gnupg \
  "$suite" "$workdir/rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 || {
  tail -n 30 "$workdir/debootstrap.log" >&2
  echo "debootstrap of $suite from $mirror failed (log above)" >&2
  exit 1
}

# Smaller image, reproducible apt behaviour inside containers.
rm -rf "$workdir/rootfs/var/cache/apt/archives/"*.deb "$workdir/rootfs/var/lib/apt/lists/"*
cat >"$workdir/rootfs/etc/apt/apt.conf.d/90lab" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "5";
EOF

tar -C "$workdir/rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$image" >/dev/null
echo "built base image $image from Debian $suite"
