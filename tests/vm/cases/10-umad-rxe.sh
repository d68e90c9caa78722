#!/bin/bash
# 10-umad-rxe: the real kernel MAD layer (ib_umad) on soft-RoCE, through libibumad:
# Get/GetResp with GRH (loopback to the port's own GID, and rxe0 -> rxe1 across
# the veth pair), hi_tid in the TID, send timeout + retry, and the kernel's own
# "unsupported method" GetResp.  See tests/vm/umad_loopback.c for the checks.
. "$(dirname "$0")/../../lib.sh"
VM=$T_ROOT/tests/vm
bin=$T_BUILD/tests/vm/umad_loopback

out=$("$VM/rxe-up.sh" 2 2>&1); rc=$?
echo "$out" | t_diag
[ $rc = 0 ] || { t_fail "rxe0 + rxe1 on veth0/veth1 come up" "rxe-up.sh exited $rc"; exit 1; }
t_ok "rxe0 + rxe1 on veth0/veth1 come up ACTIVE with umad devices"
[ -x "$bin" ] || { t_fail "umad_loopback is built" "$bin missing (make all)"; exit 1; }

loop() {   # SRC [DST]: umad_loopback prints its own TAP lines
	local out rc
	out=$("$bin" "$@" 2>&1); rc=$?
	printf '%s\n' "$out"
	if [ $rc != 0 ] && ! printf '%s\n' "$out" | grep -q '^not ok'; then
		t_fail "umad_loopback $*" "exited $rc"
	fi
	[ $rc = 0 ]
}
loop rxe0
loop rxe0 rxe1
t_done
