#!/bin/bash
# tests/fuse/run.sh - suite "fuse": the daemon's front end on this host.
#  * option and config errors: one-line messages, exit 2
#  * environment errors: no /dev/cuse (CUSE mode), no umad port (FUSE mode
#    without a fabric): one-line message naming the fix, exit 1, also when
#    started in the background (the parent reports the child's failure)
#  * FUSE mode on a private simulated fabric (tests/sim/simfabric.sh with its
#    own SIMFAB_DIR and socket name): READY=1 on $NOTIFY_SOCKET, files,
#    control socket, a FUSE-mode round trip, SIGTERM unmounts cleanly.
# The ABI probes and the diags through the mux are in tests/sim/cases/50-mux-*.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
D=$T_BUILD/umad-mux
[ -x "$D" ] || { t_fail "daemon built ($D)"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/umx-fuse.XXXXXX")
dpid="" fabric=0
cleanup() {
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	grep -q " $W/mnt fuse" /proc/mounts && fusermount3 -u "$W/mnt" 2>/dev/null
	[ $fabric = 1 ] && SIMFAB_DIR=$W/fab "$T_ROOT/tests/sim/simfabric.sh" stop >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT
cd "$W" || exit 1

# run CMD...: "rc|stderr" (stdout ignored)
run() { local e; e=$("$@" 2>&1 >/dev/null); echo "$?|$e"; }
t_is "bad node count: exit 2, one line" "$(run "$D" -f -n 0)" "2|umad-mux: bad node count '0' (1-256)"
t_is "unknown option: exit 2" "$(run "$D" --frobnicate)" "2|umad-mux: unknown option --frobnicate (try --help)"
t_is "bad mode: exit 2" "$(run "$D" --mode ufse)" "2|umad-mux: bad mode 'ufse' (cuse or fuse)"
t_is "fuse mode without --fuse-dir: exit 2" "$(run "$D" --mode fuse)" "2|umad-mux: --mode fuse needs --fuse-dir DIR"
t_is "missing argument: exit 2" "$(run "$D" -f --port)" "2|umad-mux: option --port needs an argument (try --help)"
printf '# comment\nnodes 3\n\nmode   fuse  # trailing\nfrobnicate 1\n' >c1.conf
t_is "config: unknown key -> file:line, exit 2" "$(run "$D" --config c1.conf)" "2|c1.conf:5: unknown key 'frobnicate'"
printf 'port 300\n' >c2.conf
t_is "config: bad value -> file:line, exit 2" "$(run "$D" --config c2.conf)" "2|c2.conf:1: bad port number '300' (1-255)"
printf 'nodes\n' >c3.conf
t_is "config: key without value, exit 2" "$(run "$D" --config c3.conf)" "2|c3.conf:1: 'nodes' needs a value"
t_is "config: missing file, exit 2" "$(run "$D" --config nope.conf)" "2|umad-mux: --config nope.conf: No such file or directory"
t_grep "--help lists the options" "--sysfs-export DIR" "$("$D" --help)"

if [ ! -e /dev/cuse ]; then
	out=$(run "$D" -f -n 1)
	t_grep "CUSE mode without /dev/cuse: exit 1, suggests modprobe cuse and --mode fuse" \
		'^1\|umad-mux: no usable /dev/cuse .*modprobe cuse.*--mode fuse' "$out"
	out=$(run "$D" -n 1)
	t_grep "same in the background: the parent exits 1 with the child's message" '^1\|umad-mux: no usable /dev/cuse' "$out"
else
	t_skip "CUSE mode without /dev/cuse" "this host has /dev/cuse"
	t_skip "same in the background" "this host has /dev/cuse"
fi
mkdir -p mnt
if [ ! -e /sys/class/infiniband_mad/abi_version ]; then
	out=$(run "$D" -f --mode fuse --fuse-dir mnt -n 1)
	t_grep "no umad port: exit 1, suggests modprobe ib_umad and the sim fabric" \
		'^1\|.*umad-mux: no umad port .*modprobe ib_umad.*simulated fabric' "$(tr '\n' ' ' <<<"$out")"
	t_is "no umad port: nothing left mounted" "$(grep -c " $W/mnt fuse" /proc/mounts)" 0
else
	t_skip "no umad port" "this host has IB sysfs"
	t_skip "no umad port: nothing left mounted" "this host has IB sysfs"
fi

# ---- FUSE mode under a private simulated fabric
if ! command -v ibsim >/dev/null || [ ! -r /usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so ]; then
	t_fail "simulated fabric available" "run tests/deps.sh"
	exit 1
fi
export SIMFAB_DIR=$W/fab
unset IBSIM_SOCKNAME
t0=$(date +%s%3N)
if ! "$T_ROOT/tests/sim/simfabric.sh" start >fab.log 2>&1; then
	t_diag <fab.log
	t_fail "private fabric started"
	exit 1
fi
fabric=1
t_diag <<<"private fabric up in $(( $(date +%s%3N) - t0 )) ms"
# READY=1 arrives on a datagram socket named by $NOTIFY_SOCKET
python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(10)
try: print(s.recv(256).decode())
except Exception as e: print("none", e)' "$W/notify" >notify.out 2>&1 &
npid=$!
for _ in $(seq 50); do [ -S "$W/notify" ] && break; sleep 0.02; done
t0=$(date +%s%3N)
NOTIFY_SOCKET=$W/notify "$T_ROOT/tests/sim/simfabric.sh" run Hca4 "$D" -f --mode fuse --fuse-dir "$W/mnt" \
	-n 3 --name-prefix umx --mode-bits 0666 --control "$W/ctl" >d.log 2>&1 &
dpid=$!
wait $npid
t_is "READY=1 on \$NOTIFY_SOCKET ($(( $(date +%s%3N) - t0 )) ms)" "$(cat notify.out)" "READY=1"
t_grep "daemon logs ready to stderr in the foreground" "ready: 3 FUSE files $W/mnt/umx-0..2 on ibsim0 port 1" "$(cat d.log)"
t_grep "FUSE mount with allow_other,default_permissions" "^umad-mux $W/mnt fuse.umad-mux .*default_permissions,allow_other" \
	"$(grep " $W/mnt " /proc/mounts)"
t_is "directory lists umx-0..2, mode 0666" "$(cd mnt && stat -c '%n %a' * | tr '\n' ' ')" "umx-0 666 umx-1 666 umx-2 666 "
t_is "no other names" "$(ls mnt/umx-3 2>&1 >/dev/null | grep -c 'No such file')" 1
. "$SIMFAB_DIR/env.sh"
out=$("$T_BUILD/tests/tools/mux_abi" "$W/mnt/umx-1" "$SIMFAB_LID_Hca2" 2>&1)
t_is "ABI probes + 2 PerfMgt round trips on a FUSE file: all pass" "$(grep -c '^not ok' <<<"$out") $(grep -c '^ok' <<<"$out")" "0 32"
grep '^not ok' <<<"$out" | t_diag
stats=$(t_ctl "$W/ctl" stats 2>&1)
val() { sed -n "s/^$1 //p" <<<"$stats"; }
t_is "control: nodes 3, files 0, tx_packets 2, rx_delivered 2" \
	"$(val nodes) $(val files) $(val tx_packets) $(val rx_delivered)" "3 0 2 2"
t0=$(date +%s%3N)
kill -TERM "$dpid"; wait "$dpid"; rc=$?; dpid=""
t_is "SIGTERM: exit 0 ($(( $(date +%s%3N) - t0 )) ms)" "$rc" 0
t_is "SIGTERM: unmounted" "$(grep -c " $W/mnt fuse" /proc/mounts)" 0
t_is "SIGTERM: control socket removed" "$([ -e "$W/ctl" ] && echo present || echo gone)" gone
# configuration files, umad-muxctl and make install (own fabric and daemon)
bash "$HERE/ctl.sh" || T_FAILS=$((T_FAILS + 1))
t_done
