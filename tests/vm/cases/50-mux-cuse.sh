#!/bin/bash
# 50-mux-cuse.sh - umad-mux in CUSE mode on the real kernel (run IN the VM
# guest, as root; rxe via tests/vm/rxe-up.sh).  The daemon serves 6 nodes
# /dev/umxt-0..5 on rxe0 port 1 (the real /dev/infiniband/umad0).
#   * conformance: mux_abi (ioctl errnos, header formats, limits, EAGAIN,
#     poll/epoll, EINTR, write during a blocked read) run once on
#     /dev/infiniband/umad0 and once on a node: identical results
#   * 4 clients on nodes 0-3 at once, each with a send-only agent of the same
#     class, exchange MADs with the port: vendor class 0x0a answered by a
#     responder on node 4 (the mux steers the unsolicited Gets to it), and
#     PerfMgt 0x04 answered by the kernel's own unsupported-method reply;
#     each client gets exactly its own responses (TIDs carry the client id)
#   * timeout delivery: a Get of class 0x0b (owned by a silent agent) comes
#     back with status ETIMEDOUT after timeout x (retries + 1)
#   * the control socket's counters; SIGTERM removes the nodes, exit 0
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
D=$T_BUILD/umad-mux T=$T_BUILD/tests/tools
P=umxt
W=$(mktemp -d /tmp/mux-cuse.XXXXXX)
dpid="" rpid=""
cleanup() {
	[ -n "$rpid" ] && kill -TERM "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
ms() { date +%s%3N; }

"$HERE/../rxe-up.sh" --quiet || { t_fail "rxe0 up"; exit 1; }
[ -c /dev/cuse ] || { t_fail "CUSE available (/dev/cuse)"; exit 1; }
# rxe0's RoCE v2 GID (loopback target for every request)
read -r GID GIDX <<<"$(rxe_roce_gid rxe0)"
t_grep "rxe0 has a RoCE v2 GID" '^[0-9a-f:]+ [0-9]+$' "$GID $GIDX"

# ---- conformance: the kernel's umad0 first (nothing else holds it yet)
direct=$("$T/mux_abi" /dev/infiniband/umad0 2>&1)

# ---- daemon
t0=$(ms)
NOTIFY_SOCKET="" "$D" -f -d rxe0 -p 1 -n 6 --name-prefix $P --mode-bits 0660 --control "$W/ctl" >"$W/d.log" 2>&1 &
dpid=$!
for _ in $(seq 100); do grep -q "ready:" "$W/d.log" && break; sleep 0.05; done
t_grep "daemon ready with 6 CUSE nodes ($(( $(ms) - t0 )) ms)" "ready: 6 CUSE nodes /dev/$P-0..5 on rxe0 port 1" "$(cat "$W/d.log")"
t_is "nodes are char devices /dev/$P-0..5 with mode 0660" \
	"$(stat -c '%F %a' /dev/$P-{0..5} 2>&1 | sort -u)" "character special file 660"
dup=$("$D" -f -d rxe0 -p 1 -n 1 --name-prefix $P 2>&1); rc=$?
t_grep "a second daemon with the same names fails clearly (rc $rc)" "CUSE device name '$P-0' is already in use" "$dup"

viamux=$("$T/mux_abi" /dev/$P-5 2>&1)
norm() { sed -E 's/\(.*\)//; s/[0-9]+ us//g; s#/dev/[^ ,)]+#PATH#g' <<<"$1"; }
t_is "mux_abi: same results on /dev/infiniband/umad0 and /dev/$P-5 ($(grep -c '^ok' <<<"$direct") ok direct)" \
	"$(norm "$viamux")" "$(norm "$direct")"
grep -q '^not ok' <<<"$viamux$direct" && { echo "# direct:"; t_diag <<<"$direct"; echo "# mux:"; t_diag <<<"$viamux"; }
t_is "mux_abi: every probe passes on the node" "$(grep -c '^not ok' <<<"$viamux")" 0

# ---- 4 clients at once: vendor class 0x0a via a responder on node 4
"$T/mux_vmclient" responder /dev/$P-4 0x0a 0x0b >"$W/resp.log" 2>&1 &
rpid=$!
for _ in $(seq 100); do grep -q ready "$W/resp.log" && break; sleep 0.05; done
t_grep "responder on node 4 owns Get of 0x0a and 0x0b" "responder: ready" "$(cat "$W/resp.log")"
N=40
t0=$(ms)
pids=()
for c in 0 1 2 3; do
	"$T/mux_vmclient" client /dev/$P-$c $((c + 1)) 0x0a $N "$GID" "$GIDX" >"$W/c$c.log" 2>&1 &
	pids+=($!)
done
for c in 0 1 2 3; do wait "${pids[$c]}"; echo $? >"$W/c$c.rc"; done
dt=$(( $(ms) - t0 ))
for c in 0 1 2 3; do
	t_is "class 0x0a: client $((c + 1)) on node $c got exactly its $N responses, status 0 ($(cat "$W/c$c.log"))" \
		"$(cat "$W/c$c.rc") $(grep -oE 'mine [0-9]+ foreign [0-9]+ dup [0-9]+ timeouts [0-9]+ mad_status 0x[0-9a-f]+' "$W/c$c.log")" \
		"0 mine $N foreign 0 dup 0 timeouts 0 mad_status 0x0000"
done
t_diag <<<"4 x $N round trips via the responder in $dt ms"

# ---- 4 clients at once: PerfMgt 0x04, answered by the kernel itself
t0=$(ms)
pids=()
for c in 0 1 2 3; do
	"$T/mux_vmclient" client /dev/$P-$c $((c + 11)) 0x04 $N "$GID" "$GIDX" >"$W/p$c.log" 2>&1 &
	pids+=($!)
done
for c in 0 1 2 3; do wait "${pids[$c]}"; echo $? >"$W/p$c.rc"; done
dt=$(( $(ms) - t0 ))
for c in 0 1 2 3; do
	t_grep "class 0x04: client $((c + 11)) on node $c got exactly its $N kernel replies, non-zero MAD status ($(cat "$W/p$c.log"))" \
		"^0 mine $N foreign 0 dup 0 timeouts 0 mad_status 0x0*[1-9a-f][0-9a-f]*\$" \
		"$(cat "$W/p$c.rc") $(grep -oE 'mine [0-9]+ foreign [0-9]+ dup [0-9]+ timeouts [0-9]+ mad_status 0x[0-9a-f]+' "$W/p$c.log")"
done
t_diag <<<"4 x $N round trips with the kernel's auto-reply in $dt ms"

# ---- timeout: 0x0b is owned by the silent agent of the responder
out=$("$T/mux_vmclient" timeout /dev/$P-2 0x0b "$GID" "$GIDX" 200 1 2>&1); rc=$?
ms_=$(sed -nE 's/.*after ([0-9]+) ms/\1/p' <<<"$out")
t_is "timeout: own send back with status 110, our TID ($out)" "$rc" 0
t_grep "timeout: after about timeout x (retries+1) = 400 ms" '^ok$' "$([ "${ms_:-0}" -ge 380 ] && [ "${ms_:-0}" -lt 3000 ] && echo ok)"
kill -TERM "$rpid"; wait "$rpid"; rpid=""
t_grep "responder served the 4 x $N Gets of class 0x0a" "served $((4 * N)) " "$(cat "$W/resp.log")"

# ---- control socket
stats=$(t_ctl "$W/ctl" stats 2>&1)
val() { sed -n "s/^$1 //p" <<<"$stats"; }
t_grep "control: stats answered, ends with 'end'" '^end$' "$stats"
t_is "control: files 0, vagents 0, tids_in_use 0 after the clients left" \
	"$(val files) $(val vagents) $(val tids_in_use)" "0 0 0"
t_grep "control: rx_timeouts >= 1, rx_delivered >= $((8 * N + 4 * N))" '^ok$' \
	"$([ "$(val rx_timeouts)" -ge 1 ] && [ "$(val rx_delivered)" -ge $((12 * N)) ] && echo ok)"
t_diag <<<"$stats"

# ---- shutdown
kill -TERM "$dpid"; wait "$dpid"; rc=$?; dpid=""
t_is "SIGTERM: daemon exits 0" "$rc" 0
t_is "SIGTERM: nodes removed" "$(ls /dev/$P-* 2>/dev/null | wc -l)" 0
t_diag <"$W/d.log"
t_done
