#!/bin/bash
# 70-sa-aggregation.sh - SA aggregation (core/sa.c) against OpenSM as the SA:
# tests/tools/sa_sim drives core/ in-process on Hca2 (16 virtual files) and
# calls this script back at checkpoints ("70-sa-aggregation.sh PHASE"); each
# phase checks what the SA holds from another node (saquery on Hca3) and
# what OpenSM logged (restarted with a debug log level for this case:
# "mcmr_rcv_join_mgrp/leave_mgrp: Requester port GUID" once per Set/Delete).
#   joined   16 clients joined: the group exists, ONE member (Hca2's port,
#            FullMember), OpenSM processed ONE join
#   left15   15 left: the group is still there, no leave reached OpenSM
#   left16   the last left: the group is gone, ONE leave reached OpenSM
#   trap     8 clients subscribed to trap 144, 4 to trap 64; becoming IsSM
#            changed our CapabilityMask: OpenSM reported trap 144 once, and
#            the router acknowledged it (no retransmission)
# Trap 65 ("GID out of service" for a port taken down with ibsim's Unlink)
# cannot be tested here: receiving Reports under umad2sim needs an IsSM
# process on the node; OpenSM then sends that port an SMInfo Get, which this
# process cannot answer, and umad2sim never reports the send's timeout to
# OpenSM (README "umad_send timeouts are never reported"), so the MAD stays
# outstanding and OpenSM never completes the sweep that would drop Hca4 and
# raise trap 65 (measured: trap 128 arrives, no sweep follows).  The fan-out
# logic is the same for every trap number; test_sa.c covers trap 64/65.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SELF=$HERE/$(basename "$0")
. "$HERE/../../lib.sh"
: "${SIMFAB_DIR:?run through tests/sim/run.sh}"
unset LD_PRELOAD    # (called back from sa_sim, which runs under umad2sim)
. "$SIMFAB_DIR/env.sh"
MGID=ff12:601b:ffff::4242
g=${SIMFAB_PORTGUID_Hca2#0x}
GID2=$(printf 'fe80::%x:%x:%x:%x' 0x${g:0:4} 0x${g:4:4} 0x${g:8:4} 0x${g:12:4})
LOG=$SIMFAB_DIR/osm.log

joins() { grep -c 'mcmr_rcv_join_mgrp: Requester port GUID' "$LOG"; }
leaves() { grep -c 'mcmr_rcv_leave_mgrp: Requester port GUID' "$LOG"; }
groups() { simfab_run Hca3 saquery -g 2>&1 | grep -c "MGID\.*$MGID\$"; }
# member records of our MGID as "PortGid ScopeState" (trusted query: SM_Key 1)
members() {
	simfab_run Hca3 saquery --smkey 1 -m 2>&1 | awk -v mgid="$MGID" '
		/MGID\./ { split($0, a, "\\.+"); cur = a[2] }
		/PortGid\./ { split($0, a, "\\.+"); pg = a[2] }
		/ScopeState\./ { split($0, a, "\\.+"); if (cur == mgid) print pg, a[2] }'
}

case ${1:-} in
joined)
	t_is "joined: saquery -g from Hca3 lists $MGID once" "$(groups)" 1
	t_is "joined: ONE member at the SA: Hca2's port, FullMember" "$(members)" "$GID2 0x21"
	t_is "joined: OpenSM processed ONE join (16 clients)" "$(joins)" 1
	exit 0 ;;
left15)
	t_is "15 left: the group stays at the SA" "$(groups)" 1
	t_is "15 left: still Hca2's port as member" "$(members)" "$GID2 0x21"
	t_is "15 left: no leave reached OpenSM" "$(leaves) $(joins)" "0 1"
	exit 0 ;;
left16)
	t_is "last left: the group is gone from the SA" "$(groups)" 0
	t_is "last left: ONE leave reached OpenSM" "$(leaves) $(joins)" "1 1"
	exit 0 ;;
trap)
	n=$(grep -c "Reporting Informational Notice \"CapabilityMask.*from LID $SIMFAB_LID_Hca2," "$LOG")
	t_is "trap: OpenSM reported trap 144 from Hca2 once" "$n" 1
	exit 0 ;;
esac

BIN=$T_BUILD/tests/tools/sa_sim
[ -x "$BIN" ] || { t_fail "sa_sim built" "$BIN missing"; exit 1; }
# OpenSM with a debug log for this case (the join/leave handlers log each request)
out=$(SIMFAB_OSM_OPTS="-D 0x0b" "$SIMFAB" smrestart 2>&1) || { echo "$out" | t_diag; t_fail "opensm restarted with -D 0x0b"; exit 1; }
. "$SIMFAB_DIR/env.sh"
simfab_run Hca2 "$BIN" "$SELF"
rc=$?
# back to the normal log level for what follows
out=$("$SIMFAB" smrestart 2>&1) || { echo "$out" | t_diag; t_fail "opensm restarted with its normal log level"; }
exit $rc
