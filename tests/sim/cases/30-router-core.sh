#!/bin/bash
# 30-router-core.sh - core/ (router + virtual files) on a real umad port: the
# simulated fabric's Hca2 under umad2sim.  Two virtual files on two nodes send
# SMP NodeInfo and PerfMgt PortCounters Gets with colliding TIDs to Hca3 and
# Switch1; each must get exactly its own responses.  A Get to a LID nobody has
# comes back as a timeout (status ETIMEDOUT) to its sender with its own TID; a
# file closed with requests in flight leaves every table empty.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
: "${SIMFAB_DIR:?run through tests/sim/run.sh}"
. "$SIMFAB_DIR/env.sh"
BIN=$T_BUILD/tests/tools/router_sim
[ -x "$BIN" ] || { t_fail "router_sim built" "$BIN missing"; exit 1; }
SW_LID=$(simfab_run Hca2 smpquery -D nodeinfo 0,1 2>/dev/null | sed -n 's/^# Node info: Lid \([0-9]*\).*/\1/p')
[ -n "$SW_LID" ] || SW_LID=2
simfab_run Hca2 "$BIN" "$SIMFAB_LID_Hca3" "$SW_LID" 99
