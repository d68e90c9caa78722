#!/bin/sh
# deps.sh - install every Debian 12 package umad-mux needs to build and test
# (idempotent: dpkg -s first, apt-get only for what is missing).
set -eu
PKGS="build-essential clang pkg-config linux-libc-dev libibumad-dev libfuse3-dev fuse3
libcmocka-dev valgrind
qemu-system-x86 busybox-static cpio kmod xz-utils iproute2 rdma-core libibumad3
infiniband-diags ibverbs-utils ibverbs-providers libfuse3-3
ibsim-utils libumad2sim0 opensm libibmad-dev
gnuplot-nox
libclang-rt-14-dev
udev systemd util-linux man-db python3"
need=""
for p in $PKGS; do
	dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
[ -z "$need" ] && exit 0
echo "deps: installing$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
