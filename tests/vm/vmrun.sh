#!/bin/bash
# tests/vm/vmrun.sh - run one command inside a throw-away QEMU/TCG guest running
# Debian's stock kernel (CUSE, ib_umad, rdma_rxe available), with the host's /
# as the guest's root (read-only 9p + tmpfs overlay: host binaries run unchanged).
#
#   vmrun.sh [--] CMD [ARGS...]      exit code = CMD's exit code in the guest;
#                                    124 = timeout, 125 = the VM failed (console tail
#                                    printed on stderr)
# CMD runs as root in the guest, in the host's current directory, with stdout and
# stderr streamed to vmrun.sh's stdout.  Writes in the guest go to RAM and vanish,
# except below the VM_RW directories.  Run tests/vm/setup.sh first.
#
# Knobs (environment):
#   VM_RW="dir ..."        host dirs shared read-write at the same path (default: none)
#   VM_TMPFS="dir ..."     fresh tmpfs dirs in the guest (default: /tmp and /var/tmp,
#                          minus any that contains $PWD, a VM_RW or a VM_VISIBLE dir)
#   VM_VISIBLE="dir ..."   host dirs that must stay visible (e.g. a build dir in /tmp)
#   VM_MODULES="m ..."     modules modprobe'd before CMD (default: "cuse ib_umad
#                          ib_uverbs rdma_rxe", + virtio_net with VM_NET=1; others
#                          load on demand through the guest's /sbin/modprobe)
#   VM_PASSENV="VAR ..."   host env vars exported into the guest (unset ones are skipped)
#   VM_NET=1               add a virtio-net NIC (eth0) on an isolated QEMU user net
#                          (restrict=on: no traffic leaves QEMU)
#   VM_MEM=2G VM_SMP=2 VM_TIMEOUT=900 (seconds, whole VM) VM_CPU=max
#   VM_KEEP=1              keep the run dir (console.log, output, cmd.sh, t_start, t_end,
#                          rc); its path is printed on stderr
#   VM_VERBOSE=1           print the guest kernel console on stderr afterwards
#   VM_TIMES=FILE          write "boot=S total=S" (qemu start -> command start, qemu
#                          start -> exit, seconds) to FILE
#   UMX_VM_DIR             the cache dir setup.sh filled (default as in setup.sh)
# Advanced: VM_APPEND (extra kernel args), VM_KERNEL (default the extracted vmlinux,
#   PVH boot; falls back to the bzImage), VM_INITRD, VM_MACHINE=pc, VM_BIOS,
#   VM_UPPER_SIZE=50% (tmpfs for the overlay's writes), VM_ROOT_CACHE=loose,
#   VM_RW_CACHE=mmap (9p cache modes), VM_OVL_OPTS (extra overlayfs options),
#   VM_RUNDIR_BASE (where run dirs go, default $VM_DIR/runs).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
vm_default_dir() {
	if [ -n "${UMX_VM_DIR:-}" ]; then echo "$UMX_VM_DIR"
	elif [ "$(id -u)" = 0 ] || [ -w /var/cache/umad-mux/vm ]; then echo /var/cache/umad-mux/vm
	else echo "${XDG_CACHE_HOME:-$HOME/.cache}/umad-mux/vm"; fi
}
VM_DIR=$(vm_default_dir)
[ "${1:-}" = "--" ] && shift
[ $# -ge 1 ] || { echo "usage: $0 [--] CMD [ARGS...]" >&2; exit 2; }

KVER=$(cat "$VM_DIR/KVER" 2>/dev/null)
INITRD=${VM_INITRD:-$VM_DIR/initramfs-$KVER-$(sha256sum "$HERE/guest-init" | cut -c1-12).cpio.gz}
if [ -z "$KVER" ] || [ ! -d "$VM_DIR/kernel/$KVER" ] || [ ! -s "$INITRD" ]; then
	echo "vmrun: the test bed is not set up in $VM_DIR (or guest-init changed): run $HERE/setup.sh" >&2
	exit 125
fi
KERNEL=${VM_KERNEL:-$VM_DIR/kernel/$KVER/boot/vmlinux-$KVER}    # ELF vmlinux -> PVH boot
[ -s "$KERNEL" ] || KERNEL=$VM_DIR/kernel/$KVER/boot/vmlinuz-$KVER  # bzImage fallback

BASE=${VM_RUNDIR_BASE:-$VM_DIR/runs}
mkdir -p "$BASE" && RUN=$(mktemp -d "$BASE/run.XXXXXX") || { echo "vmrun: cannot create a run dir in $BASE" >&2; exit 125; }
qpid=
cleanup() {
	[ -n "$qpid" ] && kill -TERM "$qpid" 2>/dev/null
	if [ "${VM_KEEP:-0}" = 1 ]; then echo "vmrun: run dir $RUN" >&2; else rm -rf "$RUN"; fi
}
trap cleanup EXIT

# --- command script, stage 2 and config (read by the guest from the vmio share) ---
{
	echo "#!/bin/bash"
	for v in ${VM_PASSENV:-}; do [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"; done
	printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
	printf 'exec'; printf ' %q' "$@"; printf '\n'
} >"$RUN/cmd.sh"
cp "$HERE/guest-stage2" "$RUN/stage2"
rwargs=() rwlist=""
i=0
for d in ${VM_RW:-}; do
	d=$(cd "$d" && pwd) || exit 2
	rwargs+=(-virtfs "local,path=$d,mount_tag=rw$i,security_model=none,multidevs=remap")
	rwlist="$rwlist $d"; i=$((i + 1))
done
# default: fresh tmpfs on /tmp and /var/tmp, except where that would hide the
# working directory, a VM_RW or a VM_VISIBLE dir (then the host's dir stays
# visible and writes to it go to RAM)
if [ -z "${VM_TMPFS+x}" ]; then
	VM_TMPFS=""
	for t in /tmp /var/tmp; do
		hide=0
		for d in "$PWD" $rwlist ${VM_VISIBLE:-}; do
			d=$(realpath -m "$d")
			case "$d/" in "$t"/*) hide=1 ;; esac
		done
		[ $hide = 1 ] || VM_TMPFS="$VM_TMPFS $t"
	done
fi
cat >"$RUN/vm.conf" <<EOF
VM_KMOD='$VM_DIR/kernel/$KVER/lib/modules'
VM_TMPFS='$VM_TMPFS'
VM_RW='$rwlist'
VM_MODULES='${VM_MODULES-cuse ib_umad ib_uverbs rdma_rxe}$([ "${VM_NET:-0}" = 1 ] && echo ' virtio_net')'
VM_UPPER_SIZE='${VM_UPPER_SIZE:-50%}'
VM_RW_CACHE='${VM_RW_CACHE:-mmap}'
VM_OVL_OPTS='${VM_OVL_OPTS:-}'
VM_ROOT_CACHE='${VM_ROOT_CACHE:-loose}'
EOF
netargs=(-nic none)
# shellcheck disable=SC2054  # qemu option lists
[ "${VM_NET:-0}" = 1 ] && netargs=(-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0)

t0=$(date +%s.%N)
: >"$RUN/output"
# (exec ...) so that $! is the timeout process itself, not a bash subshell
(exec timeout -k 10 "${VM_TIMEOUT:-900}" \
	qemu-system-x86_64 -nodefaults -no-user-config -machine "${VM_MACHINE:-pc}" -accel tcg,thread=multi \
	${VM_BIOS:+-bios "$VM_BIOS"} \
	-cpu "${VM_CPU:-max}" -smp "${VM_SMP:-2}" -m "${VM_MEM:-2G}" \
	-display none -vga none -no-reboot \
	-kernel "$KERNEL" -initrd "$INITRD" \
	-append "console=ttyS0 loglevel=4 panic=-1 mitigations=off nokaslr tsc=reliable no_timer_check ${VM_APPEND:-}" \
	-serial "file:$RUN/console.log" \
	-device virtio-serial-pci -chardev "file,id=out,path=$RUN/output" -device virtserialport,chardev=out,name=vmrun.out \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$RUN,mount_tag=vmio,security_model=none" \
	"${rwargs[@]}" "${netargs[@]}" </dev/null) &
qpid=$!
trap 'kill -TERM $qpid 2>/dev/null; exit 143' TERM INT HUP
# stream the guest command's output (virtio-serial port -> $RUN/output) to stdout
tail -q -s 0.2 -n +1 -F --pid=$qpid "$RUN/output" 2>/dev/null &
tpid=$!
wait $qpid
qrc=$?
qpid=
wait $tpid
t1=$(date +%s.%N)

ts=$(stat -c %.9Y "$RUN/t_start" 2>/dev/null)
[ -n "$ts" ] && boot=$(awk "BEGIN{printf \"%.1f\", $ts - $t0}") || boot=NA
total=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")
[ -z "${VM_TIMES:-}" ] || echo "boot=$boot total=$total" >"$VM_TIMES"
echo "vmrun: qemu start->command start ${boot}s, qemu start->exit ${total}s" \
	"(guest uptime at start: $(cut -d' ' -f1 "$RUN/t_start" 2>/dev/null)s)" >&2
if [ "${VM_VERBOSE:-0}" = 1 ]; then echo "---- guest console ----" >&2; cat "$RUN/console.log" >&2; fi
if [ -f "$RUN/rc" ]; then
	exit "$(cat "$RUN/rc")"
fi
if [ $qrc = 124 ] || [ $qrc = 137 ]; then echo "vmrun: TIMEOUT after ${VM_TIMEOUT:-900}s" >&2; rc=124; else rc=125; fi
echo "vmrun: guest did not report an exit code (qemu rc $qrc); console tail:" >&2
tail -n 40 "$RUN/console.log" >&2
exit $rc
