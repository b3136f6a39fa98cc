#!/usr/bin/env bash
# Builds the grader's base image from Debian packages, for machines that reach Debian's
# package mirror but no container registry. Anyone with a registry can skip this and build
# the grader image FROM debian:bookworm-slim (see docker/Dockerfile).
#
#   docker/make-base.sh [IMAGE]      default IMAGE: gofer/base:bookworm
set -euo pipefail
image=${1:-gofer/base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image already exists"
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }

rootfs=$(mktemp -d /tmp/gofer-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "[1/3] debootstrap bookworm into $rootfs"
debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$rootfs" "$mirror" \
  >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
echo "[2/3] cleaning the root file system"
chroot "$rootfs" sh -c 'apt-get clean && rm -rf /var/lib/apt/lists/*'
echo "[3/3] importing as $image"
tar -C "$rootfs" -c . | docker import - "$image" >/dev/null
rm -f "$rootfs.log"
echo "base image $image ready"
