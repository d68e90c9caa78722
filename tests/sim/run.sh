#!/bin/bash
# tests/sim/run.sh - suite "sim": simulated InfiniBand fabric (ibsim +
# OpenSM + umad2sim, see README.md).  Starts a private fabric, runs every
# tests/sim/cases/*.sh in name order, stops the fabric (also on failure or
# signal), checks that nothing of it is left.  Prints TAP lines; exits
# non-zero if anything failed.
#
# Cases get SIMFAB (this dir's simfabric.sh), SIMFAB_DIR and IBSIM_SOCKNAME in
# the environment and source "$SIMFAB_DIR/env.sh" themselves.  A case must stop
# what it started; processes of the fabric still alive after a case are
# reported.  Knobs: SIMFAB_DIR (default: a fresh mktemp dir, removed when the
# suite passes), SIM_CASE_TIMEOUT (s, default 300), SIM_CASES (glob, default *).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../lib.sh"
export LC_ALL=C
export SIMFAB=$HERE/simfabric.sh
CASE_TIMEOUT=${SIM_CASE_TIMEOUT:-300}
ms() { date +%s%3N; }

for b in ibsim opensm ibstat smpquery perfquery saquery ibnetdiscover; do
	command -v $b >/dev/null || { t_skip "sim suite" "$b missing (run tests/deps.sh)"; exit 0; }
done
[ -r /usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so ] || [ -n "${SIMFAB_PRELOAD:-}" ] ||
	{ t_skip "sim suite" "libumad2sim0 missing (run tests/deps.sh)"; exit 0; }

own_dir=0
if [ -z "${SIMFAB_DIR:-}" ]; then
	SIMFAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/umad-mux-sim.XXXXXX") || exit 1
	own_dir=1
fi
export SIMFAB_DIR
# unique per run: ibsim's abstract sockets are @<name>:ctl etc.
export IBSIM_SOCKNAME=umxsim-$$-$RANDOM

case_pid=""
fabric_up=0
cleaned=0
cleanup() {
	[ $cleaned = 1 ] && return
	cleaned=1
	# the case runs under timeout(1) in its own process group
	[ -n "$case_pid" ] && kill -TERM -- "-$case_pid" 2>/dev/null
	[ $fabric_up = 1 ] && "$SIMFAB" stop >/dev/null 2>&1
}
trap cleanup EXIT
trap 't_fail "sim: interrupted by a signal"; cleanup; exit 130' INT HUP
trap 't_fail "sim: terminated by SIGTERM"; cleanup; exit 143' TERM

# processes that belong to this run's fabric (ibsim, opensm, clients), not
# zombies: IBSIM_SOCKNAME=ours in their environment.  Call it as $(fabric_procs)
# only, never in a pipe: the other commands of the pipe have that variable too.
fabric_procs() {
	local f p st
	for f in $(grep -lzx "IBSIM_SOCKNAME=$IBSIM_SOCKNAME" /proc/[0-9]*/environ 2>/dev/null); do
		p=${f#/proc/}
		p=${p%/environ}
		[ "$p" = $$ ] && continue
		st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
		[ -n "$st" ] && [ "$st" != Z ] && echo "$p $(cat "/proc/$p/comm" 2>/dev/null)"
	done
}
T0=$(ms)
echo "# sim: state dir $SIMFAB_DIR, socket $IBSIM_SOCKNAME"
out=$("$SIMFAB" start 2>&1)
rc=$?
T1=$(ms)
echo "$out" | t_diag
if [ $rc != 0 ]; then
	t_fail "sim: fabric start" "exit $rc"
	"$SIMFAB" stop 2>&1 | t_diag
	cat "$SIMFAB_DIR"/ibsim.log "$SIMFAB_DIR"/opensm.out 2>/dev/null | tail -n 20 | t_diag
	exit 1
fi
fabric_up=1
t_ok "sim: fabric up (ibsim + opensm, SUBNET UP, 4 HCA ports ACTIVE)"

timings=""
for c in "$HERE"/cases/${SIM_CASES:-*}.sh; do
	[ -e "$c" ] || continue
	name=$(basename "$c" .sh)
	log=$SIMFAB_DIR/case-$name.out
	echo "# case $name"
	tc=$(ms)
	# own process group (timeout), output to a file: a signal to us still
	# reaches `wait` at once, and cleanup can kill the whole case
	(cd "$T_ROOT" && exec timeout -k 10 "$CASE_TIMEOUT" "$c") >"$log" 2>&1 </dev/null &
	case_pid=$!
	wait $case_pid
	rc=$?
	case_pid=""
	cat "$log"
	ms_case=$(($(ms) - tc))
	timings="$timings $name=${ms_case}ms"
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		t_fail "$name timed out after ${CASE_TIMEOUT}s"
	elif [ $rc != 0 ] && ! grep -q '^not ok ' "$log"; then
		t_fail "$name exited $rc"
	fi
	grep -q '^not ok ' "$log" && T_FAILS=$((T_FAILS + 1))	# counted for our exit code
	echo "# timing: case $name ${ms_case} ms (exit $rc)"
	# the fabric must survive the case, and the case must not leave clients
	st=$("$SIMFAB" status 2>&1)
	if [ $? != 0 ]; then
		echo "$st" | t_diag
		t_fail "$name: fabric still up afterwards" "ibsim/opensm died; restarting"
		"$SIMFAB" stop 2>&1 | t_diag
		out=$("$SIMFAB" start 2>&1) || { echo "$out" | t_diag; t_fail "sim: fabric restart"; fabric_up=0; break; }
		echo "$out" | t_diag
		continue
	fi
	pids=" $(cat "$SIMFAB_DIR"/ibsim.pid "$SIMFAB_DIR"/opensm.pid 2>/dev/null | tr '\n' ' ') "
	left=$(grep -o 'Client [0-9]*: pid [0-9]* connected at .*' <<<"$st" |
		grep -v "pid $(cat "$SIMFAB_DIR/opensm.pid" 2>/dev/null) "
		procs=$(fabric_procs)	# (not in a pipe: its partner would be listed)
		while read -r p comm; do
			case $pids in *" $p "*) ;; *) echo "process $p $comm" ;; esac
		done <<<"$procs"
		# a umad2sim process that died without exit() leaves ./sys-<pid>
		find "$SIMFAB_DIR/work" -maxdepth 1 -name 'sys-[0-9]*' -printf 'fake sysfs %f\n')
	if [ -n "$left" ]; then
		echo "$left" | t_diag
		t_fail "$name: left no processes, ibsim clients or sys-<pid> trees behind"
		"$SIMFAB" stop 2>&1 | t_diag	# a clean fabric for the next case
		out=$("$SIMFAB" start 2>&1) || { echo "$out" | t_diag; t_fail "sim: fabric restart"; fabric_up=0; break; }
		echo "$out" | t_diag
	fi
done
T2=$(ms)

if [ $fabric_up = 1 ]; then
	out=$("$SIMFAB" stop 2>&1)
	rc=$?
	echo "$out" | t_diag
	fabric_up=0
	t_is "sim: fabric stopped cleanly" "$rc" 0
fi
T3=$(ms)
# nothing of this run may be left: processes, sockets, fake sysfs trees
sleep 0.1
procs=$(fabric_procs)
t_is "sim: no ibsim/opensm/client process of this fabric left" "${procs//$'\n'/, }" ""
t_is "sim: ibsim's sockets @$IBSIM_SOCKNAME:* are gone" \
	"$(grep -cE "@$IBSIM_SOCKNAME:" /proc/net/unix)" 0

echo "# timing: fabric start $((T1 - T0)) ms, cases $((T2 - T1)) ms (${timings# }), stop $((T3 - T2)) ms, total $(($(ms) - T0)) ms"
if [ "$T_FAILS" = 0 ]; then
	[ $own_dir = 1 ] && rm -rf "$SIMFAB_DIR"
	exit 0
fi
echo "# sim: logs kept in $SIMFAB_DIR"
exit 1
