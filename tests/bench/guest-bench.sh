#!/bin/bash
# tests/bench/guest-bench.sh - the real-kernel part of `make bench`, run IN
# the VM guest (tests/vm/vmrun.sh) as root.  Soft-RoCE rxe0 (tests/vm/rxe-up.sh),
# umad-mux with one CUSE node /dev/umad-mux-0 on rxe0 port 1, and the same
# load generator on /dev/infiniband/umad0 (direct) and on the node (mux),
# interleaved, for each client count.  The requests are PerfMgt Gets to
# rxe0's own RoCE v2 GID; the kernel answers them itself (no agent owns Get
# of class 0x04: the MAD layer's unsupported-method reply); also paired
# (each client alternates between both paths).  Then the
# daemon's VmRSS with 0, 100 and 4096 idle open files.
#
# Prints result lines "BENCH key=value ..." (run.sh collects them) and
# comments.  Knobs (environment): BENCH_CLIENTS ("1 8 64"), BENCH_REPS (2),
# BENCH_TOTAL (round trips per measurement, split over the clients; 2000),
# BENCH_DEADLINE (s per measurement, 8), BENCH_RSS_STEPS ("0 100 4096").
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=$ROOT/${BUILD:-build}
LG=$B/bench/umx_loadgen
D=$B/umad-mux
CLIENTS=${BENCH_CLIENTS:-1 8 64}
REPS=${BENCH_REPS:-2}
TOTAL=${BENCH_TOTAL:-2000}
DL=${BENCH_DEADLINE:-8}
RSS_STEPS=${BENCH_RSS_STEPS:-0 100 4096}
W=$(mktemp -d /tmp/umx-bench.XXXXXX)
dpid=""
cleanup() {
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
say() { echo "# vm: $*"; }

. "$ROOT/tests/lib.sh"
"$ROOT/tests/vm/rxe-up.sh" --quiet || { echo "BENCH_ERROR rxe0 did not come up"; exit 1; }
[ -c /dev/cuse ] || { echo "BENCH_ERROR no /dev/cuse in the guest"; exit 1; }
read -r GID GIDX <<<"$(rxe_roce_gid rxe0)"
[ -n "$GID" ] || { echo "BENCH_ERROR rxe0 has no RoCE v2 GID"; exit 1; }
say "kernel $(uname -r), $(nproc) vCPUs (TCG), rxe0 GID $GID index $GIDX"

NOTIFY_SOCKET="" "$D" -f -d rxe0 -p 1 -n 1 --limit files-max=5000 --control "$W/ctl" >"$W/d.log" 2>&1 &
dpid=$!
for _ in $(seq 200); do grep -q "ready:" "$W/d.log" && break; sleep 0.05; done
grep -q "ready:" "$W/d.log" || { echo "BENCH_ERROR daemon not ready: $(tr '\n' ' ' <"$W/d.log")"; exit 1; }
NODE=/dev/umad-mux-0

# run PATH LABEL N: one measurement, its line prefixed with BENCH; LABEL
# pair: each client alternates requests on umad0 and on the node
run() {
	local n=$3 count out
	count=$(( (TOTAL + n - 1) / n ))
	[ "$count" -lt 20 ] && count=20
	if [ "$2" = pair ]; then
		out=$("$LG" run /dev/infiniband/umad0 "$n" $((count / 2)) "gid:$GID/$GIDX" --deadline "$DL" \
			--label direct --pair "$1" --label-b mux 2>&1)
		grep '^label=' <<<"$out" | sed 's/^/BENCH section=pair bed=vm /'
	else
		out=$("$LG" run "$1" "$n" "$count" "gid:$GID/$GIDX" --deadline "$DL" --label "$2" 2>&1)
		grep '^label=' <<<"$out" | sed 's/^/BENCH bed=vm /'
	fi
	grep -v '^label=' <<<"$out" | head -5 | sed 's/^/# /'
	return 0
}
for ((r = 1; r <= REPS; r++)); do
	for n in $CLIENTS; do
		# alternate the order so neither path always runs first
		if [ $((r % 2)) = 1 ]; then
			run /dev/infiniband/umad0 direct "$n"; run "$NODE" mux "$n"
		else
			run "$NODE" mux "$n"; run /dev/infiniband/umad0 direct "$n"
		fi
		run "$NODE" pair "$n"
	done
done

# ---- daemon memory with idle open files (each opened, ENABLE_PKEY'd and
# holding one registered send-only agent, like an idle libibumad client)
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$dpid/status"; }
coproc HOLD { "$LG" hold "$NODE" $RSS_STEPS --register 2>&1; }
for s in $RSS_STEPS; do
	line=""
	read -r -t 120 line <&"${HOLD[0]}" || true
	case $line in
	"held $s") sleep 0.3; echo "BENCH bed=vm label=rss path=mux clients=$s vmrss_kib=$(rss)" ;;
	*) echo "BENCH_ERROR hold $s: ${line:-no answer}"; break ;;
	esac
	echo go >&"${HOLD[1]}"
done
wait "$HOLD_PID" 2>/dev/null
sleep 0.3
echo "BENCH bed=vm label=rss_after_close path=mux clients=0 vmrss_kib=$(rss)"

kill -TERM "$dpid"; wait "$dpid"; rc=$?; dpid=""
[ $rc = 0 ] || { echo "BENCH_ERROR daemon exit $rc"; tail -5 "$W/d.log" | sed 's/^/# /'; }
exit 0
