#!/bin/bash
# tests/vm/pvrdma/outer.sh - runs IN the bed's guest (the "outer VM", via vmrun.sh):
# a nested QEMU/TCG guest with vmxnet3 + pvrdma whose backend is rxe0 and whose
# mad-chardev is umad-mux's rdmacm-mux front end.
#
#   outer.sh realize        nested QEMU with -S only: does the device realize?
#   outer.sh reg            boot the nested guest, load vmw_pvrdma, bring the vmxnet3
#                           interface up: does a REG reach umad-mux (socket)?
#   outer.sh cm             reg + a CM exchange (rdma_client in the nested guest)
#                           against cm_peer on rxe1 (one passive connection)
#   outer.sh pipe           reg, but mad-chardev = -chardev pipe on a CUSE node in
#                           rdmacm mode (--node 0:protocol=rdmacm)
# Knobs: NESTED_TIMEOUT (s, default 1200), NESTED_MEM (default 640M), BUILD.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
B=${BUILD:-$ROOT/build}
MODE=${1:-realize}
VM_DIR=${UMX_VM_DIR:-/var/cache/umad-mux/vm}
KVER=$(cat "$VM_DIR/KVER")
MAC=52:54:00:12:34:56
LL=fe80::5054:ff:fe12:3456      # the nested vmxnet3's link-local = its RoCE GID
W=$(mktemp -d /tmp/pvr.XXXXXX)
dpid="" qpid="" ppid_="" tpid=""
ms() { date +%s%3N; }
T0=$(ms)
log() { echo "outer[$(( ($(ms) - T0) ))ms]: $*"; }
. "$ROOT/tests/lib.sh"
stats() { t_ctl "$W/ctl" stats 2>&1; }
cleanup() {
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null
	[ -n "$qpid" ] && kill -TERM "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
	[ -n "$ppid_" ] && kill -TERM "$ppid_" 2>/dev/null
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
}
trap cleanup EXIT

if grep -q '^ib_cm ' /proc/modules; then modprobe -r rdma_ucm ib_ipoib rdma_cm iw_cm ib_cm 2>/dev/null; fi
log "ib_cm loaded: $(grep -c '^ib_cm ' /proc/modules)"
"$ROOT/tests/vm/rxe-up.sh" 2 --ip6 "$LL/64" || { log "rxe-up failed"; exit 1; }
log "rxe up"

NODEARGS=(-n 1 --name-prefix umxpv)
[ "$MODE" = pipe ] && NODEARGS+=(--node "0:protocol=rdmacm")
NOTIFY_SOCKET="" "$B/umad-mux" -f -v -d rxe0 -p 1 "${NODEARGS[@]}" \
	-s "$W/mux.sock" --control "$W/ctl" >"$W/d.log" 2>&1 &
dpid=$!
for _ in $(seq 200); do grep -q "ready:" "$W/d.log" && break; sleep 0.05; done
log "umad-mux: $(grep -m1 'ready:' "$W/d.log")"

if [ "$MODE" = pipe ]; then
	CHR=(-chardev "pipe,id=mad,path=/dev/umxpv-0")
else
	CHR=(-chardev "socket,id=mad,path=$W/mux.sock")
fi
TRACE=()
for e in rdmacm_mux rdmacm_mux_check_op_status rdma_mad_message rdma_backend_gid_change \
	rdma_backend_get_gid_index rdma_check_dev_attr pvrdma_exec_cmd rdma_create_ah_cache_miss \
	'rdma_backend_*qp_state*'; do TRACE+=(-trace "$e"); done
MEM=${NESTED_MEM:-640M}
Q=(qemu-system-x86_64 -nodefaults -no-user-config -machine pc,memory-backend=mb
	-object "memory-backend-ram,id=mb,size=$MEM,share=on" -m "$MEM"
	-accel tcg -cpu max -smp 1 -display none -vga none -no-reboot
	-device "vmxnet3,addr=05.0,multifunction=on,mac=$MAC"
	-device "pvrdma,addr=05.1,ibdev=rxe0,ibport=1,netdev=veth0,mad-chardev=mad"
	"${CHR[@]}" "${TRACE[@]}")

if [ "$MODE" = realize ]; then
	t0=$(ms)
	"${Q[@]}" -S -monitor "unix:$W/mon,server=on,wait=off" </dev/null >"$W/qemu.out" 2>"$W/qemu.err" &
	qpid=$!
	for _ in $(seq 600); do [ -S "$W/mon" ] && break; kill -0 $qpid 2>/dev/null || break; sleep 0.1; done
	sleep 3
	if kill -0 $qpid 2>/dev/null; then
		log "nested QEMU alive after $(( $(ms) - t0 )) ms (monitor up, +3 s)"
		python3 - "$W/mon" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(20)
def cmd(c):
    s.sendall(c.encode() + b"\n"); time.sleep(1.5); out = b""
    try:
        while True:
            d = s.recv(65536)
            out += d
            if len(d) < 65536: break
    except socket.timeout: pass
    return out.decode(errors="replace")
s.recv(65536)
out = cmd("info pci")
print("\n".join(l for l in out.splitlines() if "5:" in l or "Class" in l or "0x" in l.lower())[:3000])
cmd("quit")
PY
		wait $qpid; log "nested QEMU exit $?"
	else
		wait $qpid; log "nested QEMU DIED rc $? after $(( $(ms) - t0 )) ms"
	fi
	qpid=""
	echo "---- qemu stderr"; cat "$W/qemu.err"
	echo "---- umad-mux log"; cat "$W/d.log"
	echo "---- stats"; stats | grep -E -i 'rdmacm|socket|files|gid|mad' | head -30
	exit 0
fi

# --- nested boot: the bed's kernel + initramfs (guest-init), root = this VM's / over 9p
N=$W/nvm
mkdir -p "$N"
cp "$ROOT/tests/vm/guest-stage2" "$N/stage2"
cat >"$N/vm.conf" <<CONF
VM_KMOD='$VM_DIR/kernel/$KVER/lib/modules'
VM_TMPFS='/tmp /var/tmp'
VM_RW=''
VM_MODULES='vmxnet3 ib_uverbs ib_umad'
VM_UPPER_SIZE='50%'
VM_RW_CACHE='mmap'
VM_OVL_OPTS=''
VM_ROOT_CACHE='loose'
CONF
PEER_MAC=$(cat /sys/class/net/veth1/address)
read -r PEER_GID PEER_IDX <<<"$(rxe_roce_gid rxe1)"    # rxe1 has its link-local only
{
	echo "#!/bin/bash"
	printf 'export NESTED_MODE=%q PEER_MAC=%q PEER_GID=%q ROOT=%q\n' "$MODE" "$PEER_MAC" "$PEER_GID" "$ROOT"
	printf 'exec %q %q\n' "$HERE/nested-guest.sh" "$MODE"
} >"$N/cmd.sh"
: >"$N/output"
log "nested boot: kernel $KVER, mem $MEM, mode $MODE, peer rxe1 gid $PEER_GID mac $PEER_MAC"
t0=$(ms)
timeout -k 10 "${NESTED_TIMEOUT:-1200}" "${Q[@]}" \
	-kernel "$VM_DIR/kernel/$KVER/boot/vmlinux-$KVER" \
	-initrd "$VM_DIR/initramfs-$KVER-$(sha256sum "$ROOT/tests/vm/guest-init" | cut -c1-12).cpio.gz" \
	-append "console=ttyS0 loglevel=4 panic=-1 mitigations=off nokaslr tsc=reliable no_timer_check" \
	-serial "file:$N/console.log" \
	-device virtio-serial-pci -chardev "file,id=out,path=$N/output" -device virtserialport,chardev=out,name=vmrun.out \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$N,mount_tag=vmio,security_model=none" \
	</dev/null >"$W/qemu.out" 2>"$W/qemu.err" &
qpid=$!
tail -q -s 0.5 -n +1 -F --pid=$qpid "$N/output" 2>/dev/null | sed -u 's/^/  | /' &
tpid=$!
if [ "$MODE" = cm ]; then
	# the peer: cm_peer on rxe1's umad, for as long as the nested guest may take
	UP=/dev/infiniband/$(rxe_umad rxe1)
	CM_PEER_SECONDS=${NESTED_TIMEOUT:-1200} "$B/tests/tools/cm_peer" "$UP" "$PEER_IDX" 1 >"$W/peer.log" 2>&1 &
	ppid_=$!
fi
# REG progress while the nested guest boots
(
	last=""
	while kill -0 $qpid 2>/dev/null; do
		cur=$(grep -c -E 'registered|REG|rdmacm' "$W/d.log")
		[ "$cur" != "$last" ] && { echo "outer[$(( $(ms) - T0 ))ms]: umad-mux log lines about rdmacm/REG: $cur"; last=$cur; }
		sleep 2
	done
) &
mpid=$!
wait $qpid; qrc=$?; qpid=""
kill $mpid 2>/dev/null; wait $mpid 2>/dev/null
sleep 0.6; kill "$tpid" 2>/dev/null; tpid=""
log "nested QEMU exit $qrc after $(( $(ms) - t0 )) ms; nested guest rc $(cat "$N/rc" 2>/dev/null || echo none), t_start $(cat "$N/t_start" 2>/dev/null) t_end $(cat "$N/t_end" 2>/dev/null)"
echo "---- qemu stderr (trace + errors)"; cut -c1-400 "$W/qemu.err" | head -300
echo "---- umad-mux log"; cat "$W/d.log"
echo "---- umad-mux stats"; stats
if [ -n "$ppid_" ]; then
	kill -0 "$ppid_" 2>/dev/null && kill -TERM "$ppid_"
	wait "$ppid_"; echo "cm_peer exit $?" >>"$W/peer.log"; ppid_=""
	echo "---- cm_peer"; cat "$W/peer.log"
fi
echo "---- nested console (tail)"; tail -n 60 "$N/console.log"
exit 0
