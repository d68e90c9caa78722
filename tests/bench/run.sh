#!/bin/bash
# tests/bench/run.sh - the measurements of `make bench` (see README.md in this
# directory).  Build first (make bench-build); run as root.  In one run:
#   core  the core on the fake port (umx_corebench): native ns per MAD, and
#         callgrind instructions per routed MAD for 1, 8, 64, 1024 files
#   sim   the simulated fabric (ibsim + umad2sim): the load generator on
#         /dev/infiniband/umad0 under the preload (direct) and on a FUSE-mode
#         file of umad-mux running on the same node (mux), 1/8/64 clients
#   rss   umad-mux VmRSS with 0, 100, 4096 idle open files (sim, FUSE mode)
#   cg    callgrind on the real daemon under the simulated fabric: instructions
#         per routed MAD (fixed workload minus a no-traffic run of equal length)
#   vm    the real kernel in the VM bed (tests/vm/vmrun.sh, guest-bench.sh):
#         direct on /dev/infiniband/umad0 vs. mux on a CUSE node, rxe
# Results: $BUILD/bench/results.txt (the table, also printed), results.csv
# (long form: section,bed,path,clients,metric,value), bench.png, raw.txt
# (every raw line), and logs in $BUILD/bench/logs/.
#
# Knobs: BENCH_SKIP="vm cg ..." leaves parts out; BENCH_QUICK=1 smaller
# counts; BENCH_REPS (sim, default 3) and BENCH_VM_REPS (2): repetitions,
# medians are reported; BENCH_NICE (default -10 as root, 0 = off): the
# niceness the measurements run at, so that other load on the machine
# disturbs them less; VM_TIMEOUT (default 300 s) bounds the VM.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT" || exit 1
export LC_ALL=C
BUILD=${BUILD:-build}
B=$ROOT/$BUILD
OUT=$B/bench
LG=$OUT/umx_loadgen
CB=$OUT/umx_corebench
D=$B/umad-mux
SKIP=" ${BENCH_SKIP:-} "
QUICK=${BENCH_QUICK:-0}
REPS=${BENCH_REPS:-3}
VM_REPS=${BENCH_VM_REPS:-2}
if [ "$QUICK" = 1 ]; then REPS=${BENCH_REPS:-1}; VM_REPS=${BENCH_VM_REPS:-1}; fi
RAW=$OUT/raw.txt
LOGS=$OUT/logs
T0=$(date +%s)
ms() { date +%s%3N; }
say() { echo "bench: $*" >&2; }
skip() { [[ $SKIP == *" $1 "* ]]; }
elapsed() { echo "$(( $(date +%s) - T0 )) s"; }

for f in "$LG" "$CB" "$D"; do
	[ -x "$f" ] || { say "missing $f: run make bench (or make bench-build)"; exit 1; }
done
[ "$(id -u)" = 0 ] || say "not root: the FUSE mount and the VM may fail"
mkdir -p "$OUT" "$LOGS"
: >"$RAW"
rm -f "$OUT/results.txt" "$OUT/results.csv" "$OUT/bench.png"

# run the measurements at a higher priority than other work on the machine
NICE=${BENCH_NICE:-$([ "$(id -u)" = 0 ] && echo -10 || echo 0)}
if [ "$NICE" != 0 ]; then
	renice -n "$NICE" -p $$ >/dev/null 2>&1 || say "renice $NICE failed: running at normal priority"
fi

# ---- cleanup of everything this script starts ------------------------------
SIM_DIR="" dpid="" MNT="" vmpid=""
cleanup() {
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	dpid=""
	[ -n "$MNT" ] && grep -q " $MNT fuse" /proc/mounts && fusermount3 -u "$MNT" 2>/dev/null
	[ -n "$vmpid" ] && kill -TERM "$vmpid" 2>/dev/null && wait "$vmpid" 2>/dev/null
	vmpid=""
	if [ -n "$SIM_DIR" ]; then
		SIMFAB_DIR=$SIM_DIR "$ROOT/tests/sim/simfabric.sh" stop >/dev/null 2>&1
		rm -rf "$SIM_DIR"
		SIM_DIR=""
	fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM HUP

# record LINE: keep a raw result line ("key=value ...")
record() { echo "$*" >>"$RAW"; }
kv() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2"; }

# ---- core: fake port --------------------------------------------------------
core_part() {
	local n out base work t
	say "core: umx_corebench on the fake port ($(elapsed))"
	for n in 1 8 64 1024; do
		out=$("$CB" "$n" 20000 --time "$([ "$QUICK" = 1 ] && echo 0.2 || echo 0.5)" 2>&1)
		record "section=core bed=fake path=core clients=$n $out"
	done
	command -v valgrind >/dev/null || { say "no valgrind: core instruction counts skipped"; return; }
	# the core alone: only what runs inside umx_file_write/umx_router_input/umx_file_read
	for n in 1 8 64 1024; do
		valgrind --tool=callgrind --callgrind-out-file="$LOGS/cg.core.$n" \
			--toggle-collect=umx_file_write --toggle-collect=umx_router_input \
			--toggle-collect=umx_file_read "$CB" "$n" 20480 >"$LOGS/cg.core.$n.out" 2>&1
		t=$(sed -n 's/^summary: //p' "$LOGS/cg.core.$n")
		record "section=cg_core bed=fake path=core clients=$n rts=20480 ir=$t" \
			"ir_per_rt=$((t / 20480)) ir_per_mad=$((t / 40960))"
	done
	# the whole driver program, minus a no-traffic run (set-up/tear-down only)
	for n in 1 8 64; do
		valgrind --tool=callgrind --callgrind-out-file="$LOGS/cg.prog.$n.0" "$CB" "$n" 0 >/dev/null 2>&1
		valgrind --tool=callgrind --callgrind-out-file="$LOGS/cg.prog.$n.1" "$CB" "$n" 20480 >/dev/null 2>&1
		base=$(sed -n 's/^summary: //p' "$LOGS/cg.prog.$n.0")
		work=$(sed -n 's/^summary: //p' "$LOGS/cg.prog.$n.1")
		record "section=cg_prog bed=fake path=core clients=$n rts=20480 ir_base=$base ir_work=$work" \
			"ir_per_rt=$(( (work - base) / 20480 )) ir_per_mad=$(( (work - base) / 40960 ))"
	done
}

# ---- the simulated fabric ----------------------------------------------------
sim_start() {
	SIM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/umx-bench-sim.XXXXXX") || return 1
	export SIMFAB_DIR=$SIM_DIR IBSIM_SOCKNAME=umxbench-$$-$RANDOM
	"$ROOT/tests/sim/simfabric.sh" start >"$LOGS/simfabric.log" 2>&1 ||
		{ say "simulated fabric did not start: $(tail -3 "$LOGS/simfabric.log")"; return 1; }
	# shellcheck disable=SC1091
	. "$SIM_DIR/env.sh"
	MNT=$SIM_DIR/mnt
	mkdir -p "$MNT"
}

# daemon_start EXTRA...: umad-mux in FUSE mode on Hca2 (under umad2sim)
daemon_start() {
	local log=$1 i
	shift
	"$SIMFAB" run Hca2 "$@" -f --mode fuse --fuse-dir "$MNT" -n 1 --limit files-max=5000 >"$log" 2>&1 &
	dpid=$!    # simfabric.sh run execs: this is the daemon (or valgrind) itself
	for i in $(seq 300); do
		grep -q "ready:" "$log" && return 0
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.05
	done
	say "daemon not ready: $(tail -3 "$log" | tr '\n' ' ')"
	return 1
}
daemon_stop() {
	[ -n "$dpid" ] || return 0
	kill -TERM "$dpid" 2>/dev/null
	wait "$dpid" 2>/dev/null
	dpid=""
	grep -q " $MNT fuse" /proc/mounts && fusermount3 -u "$MNT" 2>/dev/null
	return 0
}

# sim_run PATH LABEL N TOTAL: one load generator measurement on the fabric
# (LABEL pair: direct and mux alternating in each client, see umx_loadgen.c)
sim_run() {
	local path=$1 label=$2 n=$3 total=$4 count out l
	count=$(( (total + n - 1) / n ))
	[ "$count" -lt 20 ] && count=20
	case $label in
	direct) # a node of the fabric: under umad2sim (old 56-byte header, see umx_loadgen.c)
		out=$(simfab_run Hca2 "$LG" run "$path" "$n" "$count" "lid:$SIMFAB_LID_Hca3" \
			--hdr old --deadline 4 --label direct 2>&1) ;;
	pair)   # umad2sim only takes /dev/infiniband: the FUSE file stays a real file
		out=$(simfab_run Hca2 "$LG" run /dev/infiniband/umad0 "$n" $((count / 2)) "lid:$SIMFAB_LID_Hca3" \
			--hdr old --deadline 4 --label direct --pair "$path" --label-b mux 2>&1) ;;
	*)	out=$("$LG" run "$path" "$n" "$count" "lid:$SIMFAB_LID_Hca3" --deadline 4 --label "$label" 2>&1) ;;
	esac
	while read -r l; do
		if [ "$label" = pair ]; then record "section=pair bed=sim path=$(kv label " $l") $l"
		else record "section=rt bed=sim path=$label $l"; fi
	done < <(grep '^label=' <<<"$out")
	grep -v '^label=' <<<"$out" | head -3 | sed "s/^/bench: sim $label $n: /" >&2
}

sim_part() {
	local total r n
	total=$([ "$QUICK" = 1 ] && echo 1500 || echo 4000)
	for ((r = 1; r <= REPS; r++)); do
		say "sim: repetition $r/$REPS: direct 1 8 (umad2sim), mux 1 8 64 (FUSE), paired 1 ($(elapsed))"
		# at most 10 umad2sim clients per fabric (opensm is one): the daemon
		# is down while 8 direct clients run
		for n in 1 8; do sim_run /dev/infiniband/umad0 direct "$n" "$total"; done
		daemon_start "$LOGS/daemon.sim.$r.log" "$D" || return 1
		for n in 1 8 64; do sim_run "$MNT/umad-mux-0" mux "$n" "$total"; done
		# paired needs 1 + n umad2sim processes besides opensm and the daemon: n = 1 only
		sim_run "$MNT/umad-mux-0" pair 1 "$total"
		daemon_stop
	done
}

# ---- daemon memory with idle open files (FUSE mode on the fabric) ------------
rss_of() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }
rss_part() {
	local s line
	say "rss: daemon VmRSS with 0, 100, 4096 idle open files ($(elapsed))"
	daemon_start "$LOGS/daemon.rss.log" "$D" || return 1
	coproc HOLD { "$LG" hold "$MNT/umad-mux-0" 0 100 4096 --register 2>&1; }
	for s in 0 100 4096; do
		line=""
		read -r -t 120 line <&"${HOLD[0]}" || true
		if [ "$line" != "held $s" ]; then
			say "rss: holder at $s files: ${line:-no answer}"
			break
		fi
		sleep 0.3
		record "section=rss bed=sim label=rss path=mux clients=$s vmrss_kib=$(rss_of "$dpid")"
		echo go >&"${HOLD[1]}"
	done
	wait "$HOLD_PID" 2>/dev/null
	sleep 0.3
	record "section=rss bed=sim label=rss_after_close path=mux clients=0 vmrss_kib=$(rss_of "$dpid")"
	daemon_stop
}

# ---- callgrind on the real daemon (FUSE mode under umad2sim) -----------------
# self instructions per object in a callgrind file: "IR OBJECT" lines
cg_objects() {
	awk '
	function obj(s,   id) {
		if (match(s, /^\([0-9]+\)/)) {
			id = substr(s, 1, RLENGTH)
			if (length(s) > RLENGTH + 1) name[id] = substr(s, RLENGTH + 2)
			return id
		}
		name[s] = s
		return s
	}
	/^ob=/ { cur = obj(substr($0, 4)); next }
	/^cob=/ { obj(substr($0, 5)); next }
	/^calls=/ { skipnext = 1; next }
	/^[0-9+*-]/ { if (skipnext) { skipnext = 0; next } self[cur] += $2; next }
	END { for (o in self) printf "%d %s\n", self[o], name[o] }' "$1"
}
# group objects: daemon (umad-mux itself), libfuse, libc, sim (umad2sim,
# libibumad, libibmad: the simulator's user-space port), other
cg_groups() {
	cg_objects "$1" | awk '
	{ o = $2; g = "other"
	  if (o ~ /umad-mux$/) g = "daemon"
	  else if (o ~ /libfuse3/) g = "libfuse"
	  else if (o ~ /libc\.so|libpthread/) g = "libc"
	  else if (o ~ /umad2sim|libibumad|libibmad/) g = "sim"
	  s[g] += $1 }
	END { printf "daemon=%d libfuse=%d libc=%d sim=%d other=%d", s["daemon"], s["libfuse"], s["libc"], s["sim"], s["other"] }'
}

cg_daemon_run() {   # cg_daemon_run TAG CLIENTS COUNT [SLEEP]
	local tag=$1 n=$2 count=$3 slp=${4:-0} out t0 t1
	daemon_start "$LOGS/daemon.cg.$tag.log" valgrind --tool=callgrind \
		--callgrind-out-file="$LOGS/cg.daemon.$tag" "$D" || return 1
	t0=$(ms)
	out=$("$LG" run "$MNT/umad-mux-0" "$n" "$count" "lid:$SIMFAB_LID_Hca3" --warmup 0 --deadline 60 --label "cg$tag" 2>&1)
	t1=$(ms)
	[ "$slp" != 0 ] && sleep "$slp"
	daemon_stop
	CG_WALL_MS=$((t1 - t0))
	CG_RTS=$(kv rts "$(grep -m1 '^label=' <<<"$out")")
}

cg_part() {
	local n total base work rts groups_b groups_w g vb vw line
	command -v valgrind >/dev/null || { say "no valgrind: daemon instruction counts skipped"; return; }
	total=$([ "$QUICK" = 1 ] && echo 600 || echo 2000)
	for n in 1 8; do
		say "cg: callgrind on the daemon, $n client(s), $total round trips, and a no-traffic run ($(elapsed))"
		cg_daemon_run "w$n" "$n" $(( total / n )) || return 1
		rts=${CG_RTS:-0}
		local wall=$CG_WALL_MS
		# the baseline: same start/open/register/close, no MADs, idle as long
		cg_daemon_run "b$n" "$n" 0 "$(awk -v m="$wall" 'BEGIN { printf "%.2f", m / 1000 }')" || return 1
		base=$(sed -n 's/^summary: //p' "$LOGS/cg.daemon.b$n")
		work=$(sed -n 's/^summary: //p' "$LOGS/cg.daemon.w$n")
		[ "${rts:-0}" -gt 0 ] && [ -n "$base" ] && [ -n "$work" ] || { say "cg: no result"; continue; }
		groups_b=$(cg_groups "$LOGS/cg.daemon.b$n")
		groups_w=$(cg_groups "$LOGS/cg.daemon.w$n")
		line="section=cg_daemon bed=sim path=mux clients=$n rts=$rts ir_base=$base ir_work=$work"
		line+=" ir_per_rt=$(( (work - base) / rts )) ir_per_mad=$(( (work - base) / (2 * rts) ))"
		for g in daemon libfuse libc sim other; do
			vb=$(kv "$g" "$groups_b") vw=$(kv "$g" "$groups_w")
			line+=" ${g}_per_mad=$(( (vw - vb) / (2 * rts) ))"
		done
		record "$line"
	done
}

# ---- the real kernel in the VM bed ---------------------------------------------
vm_part() {
	local out rc
	say "vm: booting the VM bed: direct vs CUSE node on rxe ($(elapsed))"
	if [ "${VM_SKIP_SETUP:-0}" != 1 ]; then
		"$ROOT/tests/vm/setup.sh" >"$LOGS/vm-setup.log" 2>&1 </dev/null ||
			{ say "vm: tests/vm/setup.sh failed: $(tail -3 "$LOGS/vm-setup.log")"; return 1; }
	fi
	export BUILD BENCH_REPS=$VM_REPS
	export BENCH_TOTAL=${BENCH_VM_TOTAL:-$([ "$QUICK" = 1 ] && echo 300 || echo 1500)}
	export BENCH_DEADLINE=${BENCH_VM_DEADLINE:-$([ "$QUICK" = 1 ] && echo 2 || echo 4)}
	export BENCH_RSS_STEPS=${BENCH_VM_RSS_STEPS:-0 100}
	export VM_PASSENV="BUILD BENCH_REPS BENCH_TOTAL BENCH_DEADLINE BENCH_RSS_STEPS"
	export VM_VISIBLE="$B"
	VM_TIMEOUT=${VM_TIMEOUT:-300} VM_TIMES="$LOGS/vm-times" \
		"$ROOT/tests/vm/vmrun.sh" "$HERE/guest-bench.sh" >"$LOGS/vm.log" 2>&1 </dev/null &
	vmpid=$!
	wait "$vmpid"
	rc=$?
	vmpid=""
	grep '^BENCH ' "$LOGS/vm.log" | while read -r _ line; do
		case $line in
		*label=rss*) record "section=rss $line" ;;
		section=*) record "$line path=$(kv label " $line")" ;;
		*) record "section=rt $line path=$(kv label " $line")" ;;
		esac
	done
	grep -E '^BENCH_ERROR|^# vm:' "$LOGS/vm.log" | sed 's/^/bench: /' >&2
	[ $rc = 0 ] || say "vm: vmrun.sh exit $rc (see $LOGS/vm.log)"
	say "vm: $(cat "$LOGS/vm-times" 2>/dev/null)"
}

skip core || core_part
if ! skip sim || ! skip rss || ! skip cg; then
	if sim_start; then
		say "sim: fabric up ($(elapsed))"
		skip sim || sim_part || say "sim part failed"
		daemon_stop
		skip rss || rss_part || say "rss part failed"
		daemon_stop
		skip cg || cg_part || say "cg part failed"
		daemon_stop
		SIMFAB_DIR=$SIM_DIR "$ROOT/tests/sim/simfabric.sh" stop >>"$LOGS/simfabric.log" 2>&1
		rm -rf "$SIM_DIR"
		SIM_DIR=""
	fi
fi
skip vm || vm_part

# rdmacm-mux protocol (QEMU pvrdma) socket path: not measured by this version
# (it carries CM MADs only; a round trip needs a CM peer, as VM case 70 has)
if "$D" --help 2>&1 | grep -q -- '--socket'; then
	RDMACM="not measured: the daemon serves it (-s/--socket), but tests/bench has no rdmacm-mux load client yet"
else
	RDMACM="not measured: this umad-mux has no rdmacm-mux socket"
fi
record "section=note rdmacm=\"$RDMACM\""

BENCH_SECS=$(( $(date +%s) - T0 ))
BENCH_SECS=$BENCH_SECS RDMACM=$RDMACM "$HERE/report.sh" "$RAW" "$OUT" || exit 1
say "done in ${BENCH_SECS} s: $OUT/results.txt, results.csv, bench.png"
