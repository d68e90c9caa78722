#!/bin/bash
# 46-churn.sh - 1,000 open/register/send/close cycles across 3 nodes with
# requests in flight to a peer that answers 20 ms late (run IN the VM, CUSE on
# rxe0).  Afterwards every table of the daemon is empty and its RSS is back
# near the baseline - the steady state after a warm-up of the same workload
# (measured: the first few hundred cycles take RSS from ~5 to ~9 MiB, the
# allocator's arenas and libfuse's buffers; after that 2,000 more cycles add
# nothing).  Runs the ASan+UBSan daemon too when it was built: there the
# quarantine keeps freed memory by design, so LeakSanitizer at exit and the
# table checks stand in for the RSS check.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
FC=$T_BUILD/tests/tools/fault_client
W=$(mktemp -d /tmp/churn.XXXXXX)
dpid=""
cleanup() {
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
stat_of() { t_ctl_stat "$W/ctl" "$1"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$dpid/status"; }

"$HERE/../rxe-up.sh" --quiet >/dev/null || { t_fail "churn: rxe0 up"; exit 1; }
GID=$(cat /sys/class/infiniband/rxe0/ports/1/gids/0)
for build in "$T_BUILD" "$T_ROOT/build-san"; do
	D=$build/umad-mux
	[ -x "$D" ] || continue
	tag=$(basename "$build")
	rm -f "$W/ctl"
	ASAN_OPTIONS=detect_leaks=1 NOTIFY_SOCKET="" "$D" -f -d rxe0 -p 1 -n 4 --name-prefix umxh \
		--control "$W/ctl" >"$W/d.log" 2>&1 &
	dpid=$!
	for _ in $(seq 200); do grep -q "ready:" "$W/d.log" && break; sleep 0.05; done
	t_grep "churn[$tag]: daemon ready" "ready:" "$(cat "$W/d.log")"
	# warm-up: the first cycles allocate what stays (agent caches, buffers)
	out=$("$FC" churn umxh 4 300 "$GID" 0x0b 2>&1)
	t_grep "churn[$tag]: warm-up: 300 cycles, no errors" "^churn: cycles 300 .* errors 0$" "$out"
	sleep 1
	base=$(rss)
	out=$("$FC" churn umxh 4 1000 "$GID" 0x0b)
	t_grep "churn[$tag]: 1000 cycles, 100 late answers received, 900 closed in flight, no errors" \
		"^churn: cycles 1000 answered 100 closed_in_flight 900 errors 0$" "$out"
	sleep 1.5   # late answers to closed clients arrive and are dropped
	for k in files vagents tids_in_use queued_packets cm_ids; do
		t_is "churn[$tag]: $k back to 0" "$(stat_of $k)" 0
	done
	t_grep "churn[$tag]: late answers to closed clients were dropped and counted" \
		'^[1-9][0-9]*$' "$(stat_of rx_drop_unmatched_response)"
	after=$(rss)
	if [ "$tag" = build-san ]; then
		echo "# churn[$tag]: RSS ${base} -> ${after} KiB (ASan quarantine; not checked)"
	else
		t_grep "churn[$tag]: RSS back near the steady state: ${base} -> ${after} KiB (at most +512 KiB)" \
			'^ok$' "$([ $((after - base)) -le 512 ] && echo ok)"
	fi
	kill -TERM "$dpid"
	wait "$dpid"
	rc=$?
	dpid=""
	t_is "churn[$tag]: clean exit (no sanitizer report)" "$rc $(grep -c 'ERROR: \(Address\|Leak\)Sanitizer\|runtime error' "$W/d.log")" "0 0"
done
