#!/bin/bash
# 45-port-fault.sh - the real port disappears and comes back (run IN the VM).
# `rdma link delete rxe0` removes the device under a running daemon: a client
# blocked in read() gets EIO at once (not a hang), then poll POLLERR, write
# EIO, register EPIPE - what ib_umad_kill_port() gives kernel umad files; a new
# open fails with ENXIO.  After `rdma link add` the daemon reopens the port by
# itself and a new client's MAD exchange works again.  Runs the plain daemon
# and, when it was built, the ASan+UBSan one.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
FC=$T_BUILD/tests/tools/fault_client
W=$(mktemp -d /tmp/fault.XXXXXX)
dpid="" bpid=""
cleanup() {
	[ -n "$bpid" ] && kill "$bpid" 2>/dev/null
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
stat_of() { t_ctl_stat "$W/ctl" "$1"; }
gid() { cat /sys/class/infiniband/rxe0/ports/1/gids/0 2>/dev/null; }

"$HERE/../rxe-up.sh" --quiet >/dev/null || { t_fail "fault: rxe0 up"; exit 1; }
for build in "$T_BUILD" "$T_ROOT/build-san"; do
D=$build/umad-mux
[ -x "$D" ] || continue
tag=$(basename "$build")
rm -f "$W/ctl"
NOTIFY_SOCKET="" "$D" -f -d rxe0 -p 1 -n 2 --name-prefix umxf --control "$W/ctl" >"$W/d.log" 2>&1 &
dpid=$!
for _ in $(seq 100); do grep -q "ready:" "$W/d.log" && break; sleep 0.05; done
t_grep "fault[$tag]: daemon ready" "ready:" "$(cat "$W/d.log")"
t_grep "fault[$tag]: a MAD exchange works before" "^probe: ok status=0x000c" "$("$FC" probe /dev/umxf-0 "$(gid)" 3)"

"$FC" block /dev/umxf-1 >"$W/block" 2>&1 &
bpid=$!
for _ in $(seq 100); do grep -q registered "$W/block" && break; sleep 0.05; done
sleep 0.3
t0=$(date +%s%3N)
rdma link delete rxe0
for _ in $(seq 100); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.05; done
dt=$(( $(date +%s%3N) - t0 ))
if kill -0 "$bpid" 2>/dev/null; then t_fail "fault[$tag]: blocked reader released" "still blocked after ${dt} ms"; kill "$bpid"; fi
bpid=""
out=$(cat "$W/block")
t_grep "fault[$tag]: the blocked read() returns EIO (${dt} ms after the link went)" "^read: -1 EIO" "$out"
t_grep "fault[$tag]: then poll() reports POLLERR" "^poll: 0x8$" "$out"
t_grep "fault[$tag]: write() EIO" "^write: EIO" "$out"
t_grep "fault[$tag]: REGISTER_AGENT EPIPE" "^register: EPIPE" "$out"
t_grep "fault[$tag]: a new open() gets ENXIO while the port is gone" "^open: ENXIO" "$("$FC" open /dev/umxf-0)"
t_grep "fault[$tag]: the daemon says the port went away" "went away" "$(cat "$W/d.log")"
t_is "fault[$tag]: the daemon is still running" "$(kill -0 "$dpid" 2>&1 && echo yes)" yes

rdma link add rxe0 type rxe netdev veth0
for _ in $(seq 200); do grep -q "is back" "$W/d.log" && break; sleep 0.05; done
t_grep "fault[$tag]: the daemon reopened the port by itself" "is back" "$(cat "$W/d.log")"
for _ in $(seq 100); do [ "$(cat /sys/class/infiniband/rxe0/ports/1/state 2>/dev/null)" = "4: ACTIVE" ] && [ -n "$(gid)" ] && break; sleep 0.1; done
t_grep "fault[$tag]: a new client's MAD exchange works again" "^probe: ok status=0x000c" "$("$FC" probe /dev/umxf-0 "$(gid)" 5)"
t_is "fault[$tag]: port_down_events counted once" "$(stat_of port_down_events)" 1
kill -TERM "$dpid"
wait "$dpid"
t_is "fault[$tag]: SIGTERM after the fault: exit 0" "$?" 0
dpid=""
if grep -q "ERROR: \\(Address\\|Leak\\)Sanitizer\\|runtime error" "$W/d.log"; then
	t_fail "fault[$tag]: sanitizer report" "$(grep -m1 ERROR "$W/d.log")"
fi
done
t_done
