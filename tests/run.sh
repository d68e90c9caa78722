#!/bin/bash
# tests/run.sh [SUITE...] - run the test suites and print "N passed, N failed".
# Suites: unit (cmocka, fake port), fuse (FUSE mode on this host), sim
# (ibsim + opensm + infiniband-diags), vm (real kernel: CUSE, ib_umad, rxe),
# fuzz (a short bounded libFuzzer pass), asan (unit, fuse and sim again on an
# ASan+UBSan build, logs in test-results/asan/).
# Every suite prints TAP lines; a suite that exits non-zero without a
# "not ok" line counts as one failure.  Logs: test-results/<suite>.log
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export BUILD=${BUILD:-build}
SUITES=${*:-unit fuse sim vm fuzz asan}
RESULTS=${RESULTS:-test-results}
mkdir -p "$RESULTS"
pass=0 fail=0 skip=0

# unit tests (cmocka, TAP output), then each binary once more under
# valgrind (not for the ASan build: the two do not mix)
run_unit() {
	local b rc=0
	for b in "$BUILD"/tests/unit/*; do
		[ -x "$b" ] || continue
		echo "# $b"
		CMOCKA_MESSAGE_OUTPUT=TAP "$b" || rc=1
		[ "${SANITIZE:-0}" = 1 ] && continue
		if valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect \
			"$b" >/dev/null 2>"$RESULTS/valgrind-$(basename "$b").log"; then
			echo "ok - valgrind $(basename "$b") clean"
		else
			sed 's/^/# /' "$RESULTS/valgrind-$(basename "$b").log" | tail -n 30
			echo "not ok - valgrind $(basename "$b")"
		fi
	done
	return $rc
}

# the same suites on the sanitizer build; its TAP lines land in this log
run_asan() {
	make -s SANITIZE=1 all >"$RESULTS/asan-build.log" 2>&1 ||
		{ tail -n 20 "$RESULTS/asan-build.log" | sed 's/^/# /'; echo "not ok - ASan+UBSan build"; return 1; }
	echo "ok - ASan+UBSan build"
	RESULTS=$RESULTS/asan SANITIZE=1 BUILD=build-san "$0" unit fuse sim | sed 's/^/# /'
	cat "$RESULTS"/asan/unit.log "$RESULTS"/asan/fuse.log "$RESULTS"/asan/sim.log
}

for s in $SUITES; do
	log=$RESULTS/$s.log
	t0=$(date +%s)
	case $s in
	unit) run_unit >"$log" 2>&1 ;;
	asan) run_asan >"$log" 2>&1 ;;
	*) if [ -x "tests/$s/run.sh" ]; then "tests/$s/run.sh" >"$log" 2>&1
	   else echo "not ok - suite $s: tests/$s/run.sh missing" >"$log"; false; fi ;;
	esac
	rc=$?
	p=$(grep -Ec '^ok ' "$log" | tr -d ' ')
	sk=$(grep -Ec '^ok .*# SKIP' "$log" | tr -d ' ')
	f=$(grep -Ec '^not ok ' "$log" | tr -d ' ')
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok - suite $s exited $rc without a failing check" >>"$log"; f=1
	fi
	grep -E '^(not ok|ok .*# SKIP)' "$log" | sed "s/^/[$s] /"
	echo "suite $s: $((p - sk)) passed, $f failed, $sk skipped ($(( $(date +%s) - t0 )) s, log $log)"
	pass=$((pass + p - sk)); fail=$((fail + f)); skip=$((skip + sk))
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
