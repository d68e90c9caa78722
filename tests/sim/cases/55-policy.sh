#!/bin/bash
# 55-policy.sh - per-node policy through the daemon, seen by unmodified
# infiniband-diags on the simulated fabric:
#   node 0  default (privileged, every class)
#   node 1  privileged=no: no QP0 - smpquery cannot register its SMI agent
#           (EPROTONOSUPPORT, as on a port without QP0), saquery works
#   node 2  classes=0x03: only SA - saquery works, perfquery is refused
# and the refusals are counted (reg_refused_policy on the control socket).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
: "${SIMFAB_DIR:?run through tests/sim/run.sh}"
. "$SIMFAB_DIR/env.sh"
SIMFAB=$T_ROOT/tests/sim/simfabric.sh
EXEC=$T_ROOT/cuse/umad-mux-exec
W=$(mktemp -d "$SIMFAB_DIR/pol.XXXXXX")
M=$W/mnt S=$W/sysfs
mkdir -p "$M"
dpid=""
cleanup() {
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	grep -q " $M fuse" /proc/mounts && fusermount3 -u "$M" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
stat_of() { t_ctl_stat "$W/ctl" "$1"; }

"$SIMFAB" run Hca2 "$T_BUILD/umad-mux" -f --mode fuse --fuse-dir "$M" -n 3 \
	--node 1:privileged=no --node 2:classes=0x03 \
	--sysfs-export "$S" --control "$W/ctl" >"$W/d.log" 2>&1 &
dpid=$!
for _ in $(seq 100); do grep -q "ready:" "$W/d.log" && break; sleep 0.05; done
t_grep "policy: daemon ready with 3 nodes" "ready: 3 FUSE" "$(cat "$W/d.log")"
via() { local n=$1; shift; "$EXEC" --sysfs "$S" --fuse-dir "$M" -n "$n" -- "$@" 2>&1; }
LID=$SIMFAB_LID_Hca3

direct=$(simfab_run Hca2 smpquery nodedesc "$LID" 2>&1)
t_is "policy: node 0 (default) runs smpquery like a direct run" "$(via 0 smpquery nodedesc "$LID")" "$direct"
out=$(via 1 smpquery nodedesc "$LID"); rc=$?
t_grep "policy: node 1 (unprivileged): smpquery cannot register QP0 (rc $rc)" "client_register for mgmt 1 failed|can't open UMAD port|failed" "$out"
t_is "policy: node 1: smpquery exits non-zero" "$([ $rc != 0 ] && echo yes)" yes
t_is "policy: node 1 (unprivileged): saquery works as direct" "$(via 1 saquery NR "$LID")" "$(simfab_run Hca2 saquery NR "$LID" 2>&1)"
t_is "policy: node 2 (SA only): saquery works as direct" "$(via 2 saquery NR "$LID")" "$(simfab_run Hca2 saquery NR "$LID" 2>&1)"
out=$(via 2 perfquery "$LID" 1); rc=$?
t_is "policy: node 2 (SA only): perfquery is refused (rc $rc)" "$([ $rc != 0 ] && echo yes)" yes
n=$(stat_of reg_refused_policy)
t_grep "policy: refusals counted: reg_refused_policy $n" '^[1-9][0-9]*$' "$n"
kill -TERM "$dpid"
wait "$dpid"
t_is "policy: SIGTERM: exit 0" "$?" 0
dpid=""
