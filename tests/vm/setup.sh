#!/bin/bash
# tests/vm/setup.sh - prepare the real-kernel test bed that vmrun.sh boots
# (idempotent; a second run only checks and takes about a second).
#
#   * installs missing Debian packages with tests/deps.sh (qemu-system-x86,
#     busybox-static, cpio, kmod, xz-utils, iproute2, rdma-core, ...)
#   * downloads Debian's stock kernel package with `apt-get download` (it is
#     never installed), unpacks it with dpkg -x, runs depmod on the copy
#   * extracts an uncompressed ELF vmlinux from the bzImage (QEMU PVH boot,
#     saves ~2.5 s per boot under TCG)
#   * builds a small busybox initramfs from tests/vm/guest-init
#
# Everything large lives in a cache directory OUTSIDE the checkout, so every
# clone on the machine shares it:
#   VM_DIR = $UMX_VM_DIR, else /var/cache/umad-mux/vm (root, or if writable),
#            else ${XDG_CACHE_HOME:-~/.cache}/umad-mux/vm
#   VM_DIR/kernel/<KVER>/             dpkg -x of linux-image-<KVER>, + boot/vmlinux-<KVER>
#   VM_DIR/KVER                       the kernel vmrun.sh boots
#   VM_DIR/initramfs-<KVER>-<hash>.cpio.gz   <hash> = guest-init's sha256 (12 hex)
#   VM_DIR/runs/run.XXXXXX/           one per vmrun.sh call (removed unless VM_KEEP=1)
#
# Knobs: UMX_VM_DIR, VM_KPKG=linux-image-X-amd64 (pin a kernel package),
#        VM_SKIP_APT=1 (no tests/deps.sh, no apt-get update; needs a cached kernel
#        or a working `apt-get download`), VM_QUIET=1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

vm_default_dir() {
	if [ -n "${UMX_VM_DIR:-}" ]; then echo "$UMX_VM_DIR"
	elif [ "$(id -u)" = 0 ] || [ -w /var/cache/umad-mux/vm ]; then echo /var/cache/umad-mux/vm
	else echo "${XDG_CACHE_HOME:-$HOME/.cache}/umad-mux/vm"; fi
}
VM_DIR=$(vm_default_dir)
say() { [ "${VM_QUIET:-0}" = 1 ] || echo "setup: $*"; }
t0=$(date +%s.%N)

# ---- packages ----------------------------------------------------------------
if [ "${VM_SKIP_APT:-0}" != 1 ]; then
	sh "$ROOT/tests/deps.sh" </dev/null
fi
for c in qemu-system-x86_64 busybox cpio depmod modprobe xz dpkg apt-get flock; do
	command -v "$c" >/dev/null || [ -x "/bin/$c" ] || [ -x "/sbin/$c" ] ||
		{ echo "setup: missing $c (run: sh tests/deps.sh)" >&2; exit 1; }
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox)
file -L "$BUSYBOX" 2>/dev/null | grep -q 'dynamically linked' &&
	{ echo "setup: $BUSYBOX is not static (install busybox-static)" >&2; exit 1; }

mkdir -p "$VM_DIR/kernel" "$VM_DIR/runs"
cd "$VM_DIR"
# one setup at a time per cache dir (several clones / CI jobs may share it)
exec 9>"$VM_DIR/.setup.lock"
flock 9

# ---- kernel ------------------------------------------------------------------
# Debian's current stock kernel: the linux-image-X.Y.Z-N-amd64 package that the
# linux-image-amd64 metapackage depends on.  Debian bumps the ABI now and then
# (-56 -> -57) and drops the old package from the mirror, so resolve it every
# time (a local apt-cache query) and download only when it changed.
resolve_kpkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9].*-amd64$/ {print $2; exit}'
}
kernel_ok() { [ -f "kernel/$1/boot/vmlinuz-$1" ] && [ -f "kernel/$1/lib/modules/$1/modules.dep" ]; }
apt_update() { [ "${VM_SKIP_APT:-0}" = 1 ] || apt-get update -qq </dev/null || true; }

KPKG=${VM_KPKG:-}
if [ -z "$KPKG" ]; then
	KPKG=$(resolve_kpkg)
	[ -n "$KPKG" ] || { apt_update; KPKG=$(resolve_kpkg); }
fi
OLD=$(cat KVER 2>/dev/null || true)
if [ -z "$KPKG" ]; then
	[ -n "$OLD" ] && kernel_ok "$OLD" || { echo "setup: cannot resolve linux-image-amd64's kernel package" >&2; exit 1; }
	echo "setup: warning: cannot resolve the kernel package; using cached $OLD" >&2
	KPKG=linux-image-$OLD
fi
KVER=${KPKG#linux-image-}

download_kernel() {   # $1 = package; unpacks into kernel/<KVER>
	local pkg=$1 kv=${1#linux-image-} tmp
	tmp=$(mktemp -d "$VM_DIR/kernel/.tmp.XXXXXX")
	chmod 777 "$tmp"    # the _apt download sandbox user writes here
	say "downloading $pkg (apt-get download, ~70 MB; not installed)"
	if ! (cd "$tmp" && apt-get download "$pkg" </dev/null >/dev/null 2>&1); then
		rm -rf "$tmp"; return 1
	fi
	say "unpacking $pkg"
	dpkg -x "$tmp/${pkg}"_*.deb "$tmp/root"
	depmod -b "$tmp/root" "$kv"
	extract_vmlinux "$tmp/root/boot/vmlinuz-$kv" "$tmp/root/boot/vmlinux-$kv"
	rm -rf "kernel/$kv"
	mv "$tmp/root" "kernel/$kv"
	rm -rf "$tmp"
}
# Uncompressed ELF vmlinux for QEMU's PVH direct boot: skips the firmware's
# real-mode loader and the in-guest XZ decompression (as scripts/extract-vmlinux).
extract_vmlinux() {
	local in=$1 out=$2 off
	for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$in" | cut -d: -f1); do
		tail -c +$((off + 1)) "$in" | xz -dcq >"$out.tmp" 2>/dev/null || true   # rc 1: trailing data
		if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			mv "$out.tmp" "$out"; break
		fi
	done
	rm -f "$out.tmp"
	[ -s "$out" ] || echo "setup: note: no vmlinux extracted; vmrun.sh boots the bzImage (slower)" >&2
}

if ! kernel_ok "$KVER"; then
	if ! download_kernel "$KPKG"; then
		# stale package lists: the mirror may have moved on to a newer ABI
		apt_update
		[ -n "${VM_KPKG:-}" ] || { KPKG=$(resolve_kpkg); KVER=${KPKG#linux-image-}; }
		if ! kernel_ok "$KVER" && ! download_kernel "$KPKG"; then
			[ -n "$OLD" ] && kernel_ok "$OLD" ||
				{ echo "setup: apt-get download $KPKG failed" >&2; exit 1; }
			echo "setup: warning: apt-get download $KPKG failed; using cached $OLD" >&2
			KVER=$OLD
		fi
	fi
fi
K=kernel/$KVER
for o in CUSE FUSE_FS INFINIBAND INFINIBAND_USER_MAD INFINIBAND_USER_ACCESS RDMA_RXE \
	NET_9P NET_9P_VIRTIO 9P_FS VIRTIO_PCI VIRTIO_CONSOLE OVERLAY_FS VETH DEVTMPFS; do
	grep -qE "^CONFIG_$o=[ym]" "$K/boot/config-$KVER" ||
		{ echo "setup: kernel $KVER lacks CONFIG_$o" >&2; exit 1; }
done

# ---- initramfs -----------------------------------------------------------------
# static busybox + the modules needed to reach the host root (virtio, 9p,
# overlay, virtio-console) + guest-init as /init.  Named after the kernel and
# guest-init's hash so that clones with different guest-init versions coexist.
HASH=$(sha256sum "$HERE/guest-init" | cut -c1-12)
INITRD=initramfs-$KVER-$HASH.cpio.gz
if [ ! -s "$INITRD" ]; then
	say "building $INITRD"
	T=$(mktemp -d "$VM_DIR/.initramfs.XXXXXX")
	mkdir -p "$T"/{bin,proc,sys,dev,newroot,lower,upper,mod}
	cp "$BUSYBOX" "$T/bin/busybox"
	: >"$T/mod/order"
	for m in virtio_pci 9pnet_virtio 9p overlay virtio_console; do
		modprobe -d "$K" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}' |
		while read -r ko; do
			b=$(basename "$ko")
			grep -qx "$b" "$T/mod/order" || { cp "$ko" "$T/mod/"; echo "$b" >>"$T/mod/order"; }
		done
	done
	install -m 755 "$HERE/guest-init" "$T/init"
	(cd "$T" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp"
	mv "$INITRD.tmp" "$INITRD"
	rm -rf "$T"
fi
echo "$KVER" >KVER.tmp && mv KVER.tmp KVER

# ---- housekeeping: other kernels, stale initramfs images and run dirs ----------
for d in kernel/*/; do
	d=${d%/}; [ "${d#kernel/}" = "$KVER" ] || { say "removing old kernel ${d#kernel/}"; rm -rf "$d"; }
done
find . -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -name "initramfs-$KVER-*" -delete
find . -maxdepth 1 -name 'initramfs-*.cpio.gz' -mtime +30 ! -name "$INITRD" -delete
find runs -mindepth 1 -maxdepth 1 -name 'run.*' -mtime +2 -exec rm -rf {} + 2>/dev/null || true
find . kernel -mindepth 1 -maxdepth 1 \( -name '.tmp.*' -o -name '.initramfs.*' \) -mmin +60 \
	-exec rm -rf {} + 2>/dev/null || true

say "ok: VM_DIR=$VM_DIR kernel $KVER, $INITRD ($(du -h "$INITRD" | cut -f1))," \
	"$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s"
