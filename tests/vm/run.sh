#!/bin/bash
# tests/vm/run.sh [CASE...] - the "vm" suite of tests/run.sh (host side):
# prepares the test bed (tests/vm/setup.sh), boots ONE guest running
# tests/vm/guest-suite.sh (every tests/vm/cases/*.sh, or the named ones) and
# passes its TAP lines through.  Build first (make all): the guest runs the
# host's binaries from $BUILD (default build).
# Exit status: 0 when every check passed.  A VM failure (timeout, crash, no exit
# code) is reported as a "not ok" line.  Knobs: see tests/vm/README.md (VM_TIMEOUT
# defaults to 1800 s here, VM_CASE_TIMEOUT to 300 s, VM_SKIP_SETUP=1 skips setup.sh).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/tests/lib.sh"
cd "$ROOT" || exit 1
now() { echo "${EPOCHREALTIME/,/.}"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
t_start=$(now)

# --- setup (idempotent; its output as TAP comments) ---------------------------
if [ "${VM_SKIP_SETUP:-0}" != 1 ]; then
	out=$("$HERE/setup.sh" 2>&1 </dev/null); rc=$?
	printf '%s\n' "$out" | t_diag
	if [ $rc != 0 ]; then
		t_fail "vm: tests/vm/setup.sh" "exit $rc"
		exit 1
	fi
fi
t_setup=$(secs "$t_start" "$(now)")

# --- one boot for the whole suite ----------------------------------------------
export BUILD=${BUILD:-build}
export VM_TIMEOUT=${VM_TIMEOUT:-1800}   # the whole suite in one boot; cases have their own limit
export VM_PASSENV="${VM_PASSENV:-} BUILD SANITIZE VM_CASE_TIMEOUT ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS"
build_abs=$(cd "$ROOT" && realpath -m "$BUILD")
export VM_VISIBLE="${VM_VISIBLE:-} $build_abs"   # even when the build dir is below /tmp
times=$(mktemp)
errs=$(mktemp)
trap 'rm -f "$times" "$errs"' EXIT
VM_TIMES=$times "$HERE/vmrun.sh" "$HERE/guest-suite.sh" "$@" 2>"$errs"
rc=$?
t_guest=$(now)
t_diag <"$errs"
read -r boot total <<<"$(sed 's/boot=//; s/total=//' "$times" 2>/dev/null)"
case $rc in
0 | 1) ;;   # the guest suite ran; its TAP lines tell the rest
124) t_fail "vm: the guest did not finish within VM_TIMEOUT=$VM_TIMEOUT s (vmrun.sh exit 124)" ;;
125) t_fail "vm: the VM failed (vmrun.sh exit 125, console tail above)" ;;
*) t_fail "vm: guest-suite.sh exited $rc" ;;
esac
echo "# vm timings: setup ${t_setup} s, qemu start -> suite start ${boot:-NA} s," \
	"qemu total ${total:-NA} s, vm suite total $(secs "$t_start" "$t_guest") s"
[ $rc = 0 ]
