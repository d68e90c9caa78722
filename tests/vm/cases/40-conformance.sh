#!/bin/bash
# 40-conformance.sh - the same ABI probe program (tests/tools/umad_conformance)
# run on the kernel's /dev/infiniband/umad0 and on a umad-mux CUSE node on the
# same port (rxe0): every probe line must be identical.  The probes cover
# ioctl validation and errno values in the kernel's order, the 32-agent
# table, ENABLE_PKEY rules, header sizes, write checks (short, bad id, no GRH
# on RoCE, oversize), method conflicts, poll, a loopback Get/GetResp, the
# kernel's unsupported-method auto-reply, timeouts, the old header format,
# blocking reads and EINTR.  (Run IN the VM guest.)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
D=$T_BUILD/umad-mux
PROBE=$T_BUILD/tests/tools/umad_conformance
W=$(mktemp -d /tmp/conf.XXXXXX)
dpid=""
cleanup() {
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

"$HERE/../rxe-up.sh" --quiet >/dev/null || { t_fail "conformance: rxe0 up"; exit 1; }
GID=$(cat /sys/class/infiniband/rxe0/ports/1/gids/0)
# the kernel first, while nothing else holds agents on the port
timeout 120 "$PROBE" /dev/infiniband/umad0 "$GID" 0 >"$W/kernel" 2>&1
t_is "conformance: probe ran on /dev/infiniband/umad0" "$?" 0

NOTIFY_SOCKET="" "$D" -f -d rxe0 -p 1 -n 2 --name-prefix umxc >"$W/d.log" 2>&1 &
dpid=$!
for _ in $(seq 100); do grep -q "ready:" "$W/d.log" && break; sleep 0.05; done
t_grep "conformance: daemon ready" "ready:" "$(cat "$W/d.log")"
timeout 120 "$PROBE" /dev/umxc-0 "$GID" 0 >"$W/mux" 2>&1
t_is "conformance: probe ran on /dev/umxc-0" "$?" 0

n_kernel=$(wc -l <"$W/kernel")
t_is "conformance: same number of probes ($n_kernel)" "$(wc -l <"$W/mux")" "$n_kernel"
while IFS= read -r line; do
	name=${line%%:*}
	got=$(grep -m1 "^$name: " "$W/mux")
	t_is "conformance: $line" "$got" "$line"
done <"$W/kernel"
