#!/bin/bash
# tests/vm/guest-suite.sh [CASE...] - the real-kernel suite, run IN the guest
# (tests/vm/run.sh does `vmrun.sh tests/vm/guest-suite.sh`).
#
# Runs every tests/vm/cases/*.sh in name order (or the named cases: file names,
# paths or name prefixes such as "10") within this one boot.  Each case is a bash
# script that sources tests/lib.sh and prints TAP lines; it runs in its own
# process group under `timeout` (VM_CASE_TIMEOUT, default 300 s) and whatever it
# leaves running is killed afterwards.  Cases share the boot: kernel state they
# create (rxe devices, veth pairs, loaded modules) stays for later cases, so
# make setup idempotent (tests/vm/rxe-up.sh is).
# A case that exits non-zero without a "not ok" line is reported as
# "not ok - <case> exited N".  Exit status: 0 when nothing failed.
set -u
# (builtins where possible: each exec costs 70 ms or more under TCG)
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
. "$here/../lib.sh"
CASES_DIR=$T_ROOT/tests/vm/cases
export PATH=$T_ROOT/tests/vm:$PATH     # rxe-up.sh etc. by name

cases=()
if [ $# = 0 ]; then
	cases=("$CASES_DIR"/*.sh)
	[ -e "${cases[0]}" ] || cases=()
else
	for a in "$@"; do
		if [ -f "$a" ]; then cases+=("$a")
		elif [ -f "$CASES_DIR/$a" ]; then cases+=("$CASES_DIR/$a")
		else
			m=("$CASES_DIR/$a"*.sh)
			[ -e "${m[0]}" ] && cases+=("${m[@]}") || t_fail "case $a" "no such case in $CASES_DIR"
		fi
	done
fi

now() { local t=${EPOCHREALTIME/[.,]/}; echo "${t:0:-5}"; }   # tenths of a second
secs() { local d=$(($2 - $1)); echo "$((d / 10)).$((d % 10))"; }
echo "# guest: kernel $(uname -r), $(nproc) CPUs, modules:" \
	"$(awk '$1 ~ /^(cuse|fuse|ib_core|ib_umad|ib_uverbs|rdma_rxe)$/ { printf "%s ", $1 }' /proc/modules)"
echo "# T_BUILD=$T_BUILD"
[ -d "$T_BUILD" ] || t_fail "build directory $T_BUILD exists" "run make all (BUILD=${BUILD:-build})"

suite_t0=$(now)
tmp=$(mktemp -d)
for c in "${cases[@]}"; do
	name=$(basename "$c" .sh)
	log=$tmp/$name.log
	echo "# --- $name"
	t0=$(now)
	# timeout puts the case into its own process group (pgid = its pid)
	timeout -k 5 "${VM_CASE_TIMEOUT:-300}" bash "$c" </dev/null >"$log" 2>&1 &
	pid=$!
	tail -q -s 0.1 -n +1 -F --pid=$pid "$log" 2>/dev/null &
	tpid=$!
	wait $pid
	rc=$?
	wait $tpid
	kill -TERM -- -$pid 2>/dev/null && { sleep 0.2; kill -KILL -- -$pid 2>/dev/null; }
	dt=$(secs "$t0" "$(now)")
	nok=0 nfail=0
	while IFS= read -r l; do
		case $l in "ok"*) nok=$((nok + 1)) ;; "not ok"*) nfail=$((nfail + 1)) ;; esac
	done <"$log"
	T_FAILS=$((T_FAILS + nfail))
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		t_fail "$name timed out" "after ${VM_CASE_TIMEOUT:-300} s"
	elif [ $rc != 0 ] && [ "$nfail" = 0 ]; then
		t_fail "$name exited $rc"
	elif [ $rc = 0 ] && [ "$nok" = 0 ] && [ "$nfail" = 0 ]; then
		t_fail "$name printed no TAP line"
	fi
	echo "# $name: $nok ok, $nfail not ok, exit $rc, ${dt} s"
done
rm -rf "$tmp"
echo "# guest suite: ${#cases[@]} cases, $T_FAILS failed checks, $(secs "$suite_t0" "$(now)") s"
t_done
