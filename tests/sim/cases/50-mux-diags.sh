#!/bin/bash
# 50-mux-diags.sh - umad-mux in FUSE mode under umad2sim on Hca2 (4 nodes);
# unmodified infiniband-diags run through umad-mux-exec (private mount
# namespace: the node as /dev/infiniband/umad0, the daemon's
# --sysfs-export tree as /sys/class), several at once on different nodes,
# and print what the same command prints when run directly under umad2sim
# on Hca2.  Lines that legitimately differ between two runs (ignored):
#   ibnetdiscover "# Topology file: generated on <date>"   (time stamp)
#   sminfo "activity count N"                             (the SM's counter ticks)
#   perfquery PortXmit/RcvData, PortXmit/RcvPkts          (our own MADs count)
# Also: ibstat through the exported sysfs equals ibstat under umad2sim, the
# ABI probes (tests/tools/mux_abi, with PerfMgt round trips) pass on a node,
# the control socket answers, SIGTERM unmounts.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
: "${SIMFAB_DIR:?run through tests/sim/run.sh}"
. "$SIMFAB_DIR/env.sh"
EXEC=$T_ROOT/cuse/umad-mux-exec
W=$(mktemp -d "$SIMFAB_DIR/mux.XXXXXX")
M=$W/mnt S=$W/sysfs
mkdir -p "$M"
dpid=""
cleanup() {
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	grep -q " $M fuse" /proc/mounts && fusermount3 -u "$M" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
ms() { date +%s%3N; }

t0=$(ms)
"$SIMFAB" run Hca2 "$T_BUILD/umad-mux" -f --mode fuse --fuse-dir "$M" -n 4 \
	--sysfs-export "$S" --control "$W/ctl" >"$W/d.log" 2>&1 &
dpid=$!	# simfabric.sh run execs the daemon: this is its pid
for _ in $(seq 100); do grep -q "ready:" "$W/d.log" && break; sleep 0.05; done
t_grep "daemon ready under umad2sim on Hca2 ($(( $(ms) - t0 )) ms)" "ready: 4 FUSE files $M/umad-mux-0..3 on ibsim0 port 1" "$(cat "$W/d.log")"
t_is "FUSE files umad-mux-0..3, regular, mode 0600" \
	"$(cd "$M" && stat -c '%n %F %a' * 2>&1 | tr '\n' ' ')" \
	"umad-mux-0 regular empty file 600 umad-mux-1 regular empty file 600 umad-mux-2 regular empty file 600 umad-mux-3 regular empty file 600 "

via() { local n=$1; shift; "$EXEC" --sysfs "$S" --fuse-dir "$M" -n "$n" -- "$@" 2>&1; }
filt() { sed -E '/^# Topology file: generated on/d; s/activity count [0-9]+/activity count N/; /^Port(Xmit|Rcv)(Data|Pkts):/d'; }

t_is "ibstat through the exported sysfs = ibstat under umad2sim" "$(via 0 ibstat)" "$(simfab_run Hca2 ibstat 2>&1)"

L3=$SIMFAB_LID_Hca3 L4=$SIMFAB_LID_Hca4
CMDS=("smpquery nodeinfo $L3" "perfquery $L4 1" "saquery NR $L3" "ibnetdiscover" "sminfo" "smpquery -D nodedesc 0,1" "saquery -s")
declare -A want
for i in "${!CMDS[@]}"; do want[$i]=$(simfab_run Hca2 ${CMDS[$i]} 2>&1 | filt); done
# all at once, spread over the 4 nodes
t0=$(ms)
pids=()
for i in "${!CMDS[@]}"; do
	(via $((i % 4)) ${CMDS[$i]} | filt >"$W/out.$i"; echo "${PIPESTATUS[0]}" >"$W/rc.$i") &
	pids+=($!)
done
wait "${pids[@]}"
dt=$(( $(ms) - t0 ))
for i in "${!CMDS[@]}"; do
	got=$(cat "$W/out.$i")
	if [ "$got" = "${want[$i]}" ] && [ "$(cat "$W/rc.$i")" = 0 ] && [ -n "$got" ]; then
		t_ok "${CMDS[$i]} on node $((i % 4)): same output as direct ($(wc -l <<<"$got") lines)"
	else
		diff <(echo "${want[$i]}") <(echo "$got") | head -20 | t_diag
		t_fail "${CMDS[$i]} on node $((i % 4)): same output as direct" "rc $(cat "$W/rc.$i")"
	fi
done
t_diag <<<"${#CMDS[@]} diags at once through the mux in $dt ms"

# ---- ABI probes on a node, with PerfMgt round trips to Hca3
out=$("$T_BUILD/tests/tools/mux_abi" "$M/umad-mux-3" "$L3" 2>&1)
echo "$out" | sed 's/^\(not \)\{0,1\}ok - /&mux_abi: /'
[ "$(grep -c '^not ok' <<<"$out")" = 0 ] || T_FAILS=$((T_FAILS + 1))

# ---- control socket
stats=$(python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"stats\nbogus\n"); b=b""
while b.count(b"end\n") < 2:
    d=s.recv(65536)
    if not d: break
    b+=d
print(b.decode(), end="")' "$W/ctl" 2>&1)
val() { sed -n "s/^$1 //p" <<<"$stats"; }
t_grep "control: unknown command answered with an error line" '^error unknown command: bogus( \(try help\))?$' "$stats"
t_is "control: nodes 4, no open files or transactions left" "$(val nodes) $(val files) $(val tids_in_use)" "4 0 0"
t_grep "control: tx_packets and rx_delivered count the diags' MADs (tx $(val tx_packets), rx $(val rx_delivered))" '^ok$' \
	"$([ "$(val tx_packets)" -gt 20 ] && [ "$(val rx_delivered)" -gt 20 ] && echo ok)"

# ---- shutdown
kill -TERM "$dpid"; wait "$dpid"; rc=$?; dpid=""
t_is "SIGTERM: daemon exits 0" "$rc" 0
t_is "SIGTERM: $M unmounted" "$(grep -c " $M fuse" /proc/mounts)" 0
t_done
