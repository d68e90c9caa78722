#!/bin/bash
# 70-cm-two-gids.sh - CM paravirtualisation on the real kernel (run IN the VM
# guest, as root): rxe0 + rxe1 on a veth pair (tests/vm/rxe-up.sh 2), rxe0
# with three more RoCE GIDs (fe80::b, ::c, ::d on veth0); the peer uses rxe1's
# link-local GID.  (Link-local on purpose: both veths live in one network
# namespace, so a global address of the other veth is routed via lo, where rxe
# drops it.)  umad-mux on rxe0 serves node 0 (CUSE, umad mode, bound to the
# link-local GID's index), node 1 (CUSE, rdmacm mode, default `answers none`)
# and the rdmacm-mux socket; --limit cm-grace-ms=1000.
#   client A: tests/tools/rdmacm_client cm on /dev/umxcm-0 (umad ioctls/read/write)
#   client B: the same over the rdmacm-mux protocol (socket), REG of fe80::b,
#             each MAD addressed to the peer
#   client C: socket, REG of fe80::c, every MAD addressed as QEMU pvrdma's
#             mad_send() does: to C's own GID (the daemon must find the peer)
#   client D: like C, on /dev/umxcm-1 (rdmacm node) as QEMU's `-chardev pipe`
#             uses it: requests written, never an answer read (none may come)
#   peer:     tests/tools/cm_peer on /dev/infiniband/umad<rxe1> with its own
#             CM agent (so the kernel's ib_cm must not be loaded)
# All clients use the SAME local comm id 0x1234 and TID 0x77 for
# REQ -> REP -> RTU, DREQ -> DREP (active side), then each accepts the REQ the
# peer sends to ITS GID (steered by the GRH: the gid index it arrived on) and
# answers with comm id 0x1235: REP, RTU, DREQ -> DREP.  Checks: each client
# got exactly its own messages (no foreign ones) with its own comm ids mapped
# back; the peer saw four different comm ids and TIDs; C and D, which address
# everything to themselves, reached the peer; each REP carries the
# TID the peer answered; after the grace period the comm-id table is empty
# while the clients still hold their files (cm_ids >= 2 during the
# exchanges, 0 after DREQ/DREP + 1 s).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
D=$T_BUILD/umad-mux C=$T_BUILD/tests/tools/rdmacm_client PEER=$T_BUILD/tests/tools/cm_peer
P=umxcm
W=$(mktemp -d /tmp/cm-gids.XXXXXX)
dpid="" ppid_="" apid="" bpid="" cpid="" dcpid=""
cleanup() {
	for p in $apid $bpid $cpid $dcpid $ppid_; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
ms() { date +%s%3N; }
ctl() { t_ctl "$W/ctl" "$1" 2>&1; }
stats() { ctl stats; }

# the kernel's CM would own class 0x07 on both ports
if grep -q '^ib_cm ' /proc/modules; then
	modprobe -r rdma_ucm ib_ipoib rdma_cm iw_cm ib_cm 2>/dev/null
fi
t_is "the kernel's ib_cm is not loaded (lsmod)" "$(grep -c '^ib_cm ' /proc/modules)" 0

t0=$(ms)
"$HERE/../rxe-up.sh" 2 --ip6 fe80::b/64 --ip6 fe80::c/64 --ip6 fe80::d/64 --quiet ||
	{ t_fail "rxe0 + rxe1 up with fe80::b, ::c, ::d on veth0"; exit 1; }
# GID index of an address on rxeN (RoCE v2 entry)
gid_of() {   # dev expanded-gid -> index
	local i g t
	for ((i = 0; i < 16; i++)); do
		read -r g <"/sys/class/infiniband/$1/ports/1/gids/$i" 2>/dev/null || continue
		read -r t <"/sys/class/infiniband/$1/ports/1/gid_attrs/types/$i" 2>/dev/null || continue
		[ "$t" = "RoCE v2" ] || continue
		case $g in ${3:-NONE}) continue ;; $2) echo "$i $g"; return 0 ;; esac
	done
	return 1
}
X=fe80:0000:0000:0000:0000:0000:0000:000
read -r IA GA <<<"$(gid_of rxe0 'fe80:*' "${X}[bcd]")"
read -r IB GB <<<"$(gid_of rxe0 "${X}b")"
read -r IC GC <<<"$(gid_of rxe0 "${X}c")"
read -r ID GD <<<"$(gid_of rxe0 "${X}d")"
read -r IP GP <<<"$(gid_of rxe1 'fe80:*')"
short() { python3 -c "import ipaddress,sys; print(ipaddress.IPv6Address(sys.argv[1]))" "$1"; }
t_grep "GIDs: A rxe0[$IA]=$GA, B [$IB]=$GB, C [$IC]=$GC, D [$ID]=$GD, peer rxe1[$IP]=$GP ($(( $(ms) - t0 )) ms)" \
	'^[0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+$' "$IA $IB $IC $ID $IP"
UP=/dev/infiniband/$(rxe_umad rxe1)
t_grep "rxe1's umad device ($UP)" '^/dev/infiniband/umad[0-9]+$' "$UP"

t0=$(ms)
NOTIFY_SOCKET="" "$D" -f -d rxe0 -p 1 -n 2 --name-prefix $P --node "0:gid-index=$IA" \
	--node 1:protocol=rdmacm \
	-s "$W/rdmacm.sock" --control "$W/ctl" --limit cm-grace-ms=1000 >"$W/d.log" 2>&1 &
dpid=$!
for _ in $(seq 100); do grep -q "ready:" "$W/d.log" && break; sleep 0.05; done
t_grep "daemon ready: /dev/$P-0 bound to gid index $IA, rdmacm socket ($(( $(ms) - t0 )) ms)" \
	"ready: 2 CUSE nodes" "$(cat "$W/d.log")"

"$PEER" "$UP" "$IP" 4 "$GA" "$GB" "$GC" "$GD" >"$W/peer.log" 2>&1 &
ppid_=$!
for _ in $(seq 100); do grep -q "peer: ready" "$W/peer.log" && break; sleep 0.05; done
# the comm-id table while the exchanges run (python start-up paces it)
# (one python process polls every 20 ms: a python start per sample is too slow under TCG)
python3 -c '
import os,socket,sys,time
while not os.path.exists(sys.argv[2]):
    s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"stats\n"); b=b""
    while not b.endswith(b"end\n"):
        d=s.recv(65536)
        if not d: break
        b+=d
    s.close()
    for l in b.decode().splitlines():
        if l.startswith("cm_ids "): print(l.split()[1], flush=True)
    time.sleep(0.02)' "$W/ctl" "$W/stop" >"$W/cm_ids" 2>&1 &
spid=$!
for _ in $(seq 200); do [ -s "$W/cm_ids" ] && break; sleep 0.05; done
t0=$(ms)
"$C" cm /dev/$P-0 umad "$GA" "$IA" "$GP" 0x1234 0x77 >"$W/a.log" 2>"$W/a.err" &
apid=$!
"$C" cm "$W/rdmacm.sock" rdmacm "$GB" 0 "$GP" 0x1234 0x77 >"$W/b.log" 2>"$W/b.err" &
bpid=$!
# the guest's own gid index (3) means nothing to the host: the daemon uses its own
"$C" cm "$W/rdmacm.sock" pvrdma "$GC" 3 "$GP" 0x1234 0x77 >"$W/c.log" 2>"$W/c.err" &
cpid=$!
"$C" cm /dev/$P-1 pvrdma-pipe "$GD" 3 "$GP" 0x1234 0x77 >"$W/dc.log" 2>"$W/dc.err" &
dcpid=$!
for _ in $(seq 400); do
	n=0
	for f in a b c dc; do grep -q '^done' "$W/$f.log" && n=$((n + 1)); done
	[ $n = 4 ] && break
	for p in $apid $bpid $cpid $dcpid; do kill -0 "$p" 2>/dev/null || break 2; done
	sleep 0.1
done
dt=$(( $(ms) - t0 ))
wait "$ppid_"; prc=$?; ppid_=""
touch "$W/stop"; wait "$spid"
t_diag <<<"peer:
$(cat "$W/peer.log")
client A (umad, /dev/$P-0):
$(cat "$W/a.log" "$W/a.err")
client B (rdmacm socket):
$(cat "$W/b.log" "$W/b.err")
client C (rdmacm socket, pvrdma addressing):
$(cat "$W/c.log" "$W/c.err")
client D (rdmacm node, pvrdma addressing, no answers):
$(cat "$W/dc.log" "$W/dc.err")"
t_diag <<<"all four exchanges (4 connections each way) in $dt ms"

for x in A B C D; do
	lc=$(tr 'ABCD' 'abcd' <<<"$x")
	[ $x = D ] && lc=dc
	log=$(cat "$W/$lc.log")
	t_grep "client $x: exchange complete, result ok, no foreign messages" '^foreign 0$' "$log"
	t_grep "client $x: result ok" '^result ok$' "$log"
	t_grep "client $x: REP names its own comm id 0x1234 (mapped back), from the peer's GID" \
		"^rep tid 0x[0-9a-f]+ local 0x50[0-9a-f]{2} remote 0x1234 from $(short "$GP")\$" "$log"
	t_grep "client $x: DREP names 0x1234" '^drep tid 0x[0-9a-f]+ local 0x50[0-9a-f]{2} remote 0x1234$' "$log"
	# the TID this client's REP carries is the one the peer answered for ITS
	# REQ: the low 32 bits (the router's TID for the REQ; the upper 32 are
	# the sending agent's hi_tid, set by each kernel on a Send)
	plocal=$(sed -nE 's/^rep tid 0x[0-9a-f]+ local (0x[0-9a-f]+).*/\1/p' <<<"$log")
	rtid=$(sed -nE 's/^rep tid 0x[0-9a-f]{8}([0-9a-f]{8}).*/\1/p' <<<"$log")
	ptid=$(sed -nE "s/^peer: REQ from .* tid 0x[0-9a-f]{8}([0-9a-f]{8}) -> REP local $plocal\$/\1/p" "$W/peer.log")
	t_is "client $x: its REP's TID (low 32 bits) is the one the peer saw on its REQ (0x$rtid, not 0x77)" \
		"${rtid:-none}" "${ptid:-other}"
done
gia=$(sed -nE 's/^req .* target ([0-9a-f:]+) arrived_on_gid_index ([0-9]+)$/\1 \2/p' "$W/a.log")
gib=$(sed -nE 's/^req .* target ([0-9a-f:]+) arrived_on_gid_index ([0-9]+)$/\1 \2/p' "$W/b.log")
gic=$(sed -nE 's/^req .* target ([0-9a-f:]+) arrived_on_gid_index ([0-9]+)$/\1 \2/p' "$W/c.log")
gid_=$(sed -nE 's/^req .* target ([0-9a-f:]+) arrived_on_gid_index ([0-9]+)$/\1 \2/p' "$W/dc.log")
t_is "client A: the peer's REQ to GID A (only) reached A, on gid index $IA" "$gia" "$(short "$GA") $IA"
t_is "client B: the peer's REQ to GID B (only) reached B, on gid index $IB" "$gib" "fe80::b $IB"
t_is "client C: the peer's REQ to GID C (only) reached C, on gid index $IC" "$gic" "fe80::c $IC"
t_is "client D: the peer's REQ to GID D (only) reached D, on gid index $ID" "$gid_" "fe80::d $ID"
for x in A:a:0 B:b:1 C:c:2 D:dc:3; do
	IFS=: read -r n f k <<<"$x"
	t_grep "client $n: passive connection 0x1235 (its REP went to the REQ's sender): RTU names 0x1235" \
		"^rtu local 0x600$k remote 0x1235\$" "$(cat "$W/$f.log")"
done
t_is "peer: 4 REQs with 4 DIFFERENT comm ids and TIDs (every client used 0x1234 / 0x77), all 8 connections done (exit $prc)" \
	"$(sed -n 's/^summary: //p' "$W/peer.log")" "reqs 4 distinct_comm_ids 4 distinct_tids 4 completed 4 active_completed 4"
val() { sed -n "s/^$1 //p" <<<"$2"; }
max=$(sort -n "$W/cm_ids" | tail -n 1)
t_grep "comm-id table during the exchanges: several clients' 0x1234 mapped at once (max cm_ids ${max:-none}, $(wc -l <"$W/cm_ids") samples)" \
	'^ok$' "$([ "${max:-0}" -ge 2 ] && echo ok)"
sleep 2.5
st2=$(stats)
t_is "comm-id table after the grace period (1 s): empty, clients still open ($(val files "$st2") files)" \
	"$(val cm_ids "$st2") $(val files "$st2")" "0 4"
t_is "no CM message was unroutable" "$(val rx_drop_cm_unroutable "$st2")" 0
# C and D each sent REQ RTU DREQ (active) and REP DREP (passive) to their own GID
t_is "pvrdma addressing: the 10 MADs C and D sent to their own GIDs went to the peer, none refused" \
	"$(val rdmacm_tx_readdressed "$st2") $(val rdmacm_tx_unroutable "$st2")" "10 0"
t_is "node 1 (answers none): D's REG and 5 MADs got no answer, none of them failed" \
	"$(val rdmacm_answers_suppressed "$st2") $(val rdmacm_errors_unanswered "$st2")" "6 0"
t_is "no live peer entry evicted" "$(val rdmacm_peers_evicted "$st2")" 0
lst=$(ctl list)
t_is "control list: 3 rdmacm clients (B and C on the socket, D on node 1)" \
	"$(grep -c '^rdmacm client ' <<<"$lst")" 3
t_grep "control list: D, node 1's client, answers none, one GID" \
	'^rdmacm client "umxcm-1 \(rdmacm\)" answers none queued 0 gids 1$' "$lst"
t_grep "control list: socket clients named by pid, answers all" \
	'^rdmacm client "rdmacm socket fd [0-9]+ pid [0-9]+" answers all queued 0 gids 1$' "$lst"
t_grep "control list: C's GID at index $IC, no live peer after the grace period" \
	"^rdmacm gid fe80::c index $IC peers 0\$" "$lst"
kill -TERM "$apid" "$bpid" "$cpid" "$dcpid"
wait "$apid"; ra=$?
wait "$bpid"; rb=$?
wait "$cpid"; rc_=$?
wait "$dcpid"; rd=$?
apid="" bpid="" cpid="" dcpid=""
t_is "clients exit 0" "$ra $rb $rc_ $rd" "0 0 0 0"
sleep 0.2
t_is "files 0 after the clients left" "$(val files "$(stats)")" 0
kill -TERM "$dpid"; wait "$dpid"; rc=$?; dpid=""
t_is "SIGTERM: daemon exits 0" "$rc" 0
t_diag <<<"$st2"
t_done
