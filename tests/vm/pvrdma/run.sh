#!/bin/bash
# tests/vm/pvrdma/run.sh - OPT-IN test (not in `make check`: 5-12 minutes per
# mode, and it builds a kernel module): a real QEMU pvrdma guest, nested inside
# the bed's VM (TCG inside TCG), uses umad-mux as its MAD multiplexer.
#
#   tests/vm/pvrdma/run.sh [cm] [pipe]      (default: both)
#
#   cm    mad-chardev = -chardev socket on umad-mux's rdmacm-mux socket; the
#         nested guest's kernel (vmw_pvrdma, ib_cm, rdma_cm) connects with
#         rdma_client to cm_peer on the outer VM's rxe1: REG, REQ -> REP -> RTU,
#         and DREQ -> DREP when rdma_client goes
#   pipe  mad-chardev = -chardev pipe on a CUSE node in rdmacm mode (default
#         `answers none`): REG and UNREG, nothing answered
# Needs (installed here): the module vmw_pvrdma, which Debian's kernel lacks
# (build-module.sh builds it from linux-source-6.1 against linux-headers),
# rdmacm-utils (rdma_client).  Logs: build/pvrdma-probe/logs/.  TAP on stdout.
# PVRDMA_REUSE_LOGS=1: check the last run's logs again without booting.
# (rdma_client itself ends by its timeout: cm_peer has no QP, so after RTU
# no data flows; killing it makes the guest's kernel send the DREQ.)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
. "$ROOT/tests/lib.sh"
MODES=${*:-cm pipe}
B=${BUILD:-$ROOT/build}
LOGS=$B/pvrdma-probe/logs
GUEST_GID=fe80::5054:ff:fe12:3456
mkdir -p "$LOGS"
dpkg -s rdmacm-utils >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q rdmacm-utils >/dev/null
t_is "rdmacm-utils installed (rdma_client)" "$(command -v rdma_client >/dev/null && echo yes)" yes
"$ROOT/tests/vm/setup.sh" >/dev/null 2>&1 || t_fail "tests/vm/setup.sh"
"$HERE/build-module.sh" >"$LOGS/build-module.log" 2>&1
t_is "vmw_pvrdma.ko built for the bed's kernel (build-module.sh)" "$?" 0
[ -x "$B/umad-mux" ] && [ -x "$B/tests/tools/cm_peer" ] || make -C "$ROOT" all >/dev/null

for mode in $MODES; do
	t0=$(date +%s)
	if [ "${PVRDMA_REUSE_LOGS:-0}" = 1 ] && [ -s "$LOGS/$mode.log" ]; then
		rc=0      # check the last run's log again (editing the checks)
	else
		VM_TIMEOUT=${VM_TIMEOUT:-1500} VM_MEM=${VM_MEM:-3G} VM_PASSENV="BUILD NESTED_TIMEOUT NESTED_MEM" \
			"$ROOT/tests/vm/vmrun.sh" "$HERE/outer.sh" "$mode" >"$LOGS/$mode.log" 2>&1
		rc=$?
	fi
	L=$(cat "$LOGS/$mode.log")
	t_is "$mode: the outer VM ran outer.sh (exit $rc, $(( $(date +%s) - t0 )) s, log $LOGS/$mode.log)" "$rc" 0
	val() { sed -n "/^---- umad-mux stats/,\$ s/^$1 //p" <<<"$L" | head -n 1; }
	t_grep "$mode: the nested guest's pvrdma port is ACTIVE with its RoCE GID" \
		"state 4: ACTIVE.*gid\\[0\\]=fe80:0000:0000:0000:5054:00ff:fe12:3456" "$L"
	t_grep "$mode: QEMU REGistered the guest's GID with umad-mux" \
		"GID $GUEST_GID registered \\(gid index [0-9]+\\)" "$L"
	t_grep "$mode: ... and UNREGistered it when the guest went down" "GID $GUEST_GID unregistered" "$L"
	case $mode in
	cm)
		t_grep "cm: QEMU read the REG's answer synchronously: OK" \
			'rdmacm_mux_check_op_status resp: msg_type=1, op_code=0, err_code=0' "$L"
		t_grep "cm: the guest's REQ reached cm_peer on rxe1, from the guest's GID" \
			"peer: REQ from $GUEST_GID comm 0x[0-9a-f]+ " "$L"
		t_grep "cm: QEMU handed the peer's REP to the guest (mad recv, attr 0x0013)" \
			'rdma_mad_message mad recv \([0-9]+\): ([0-9A-F]{2} ){16}00 13 ' "$L"
		t_grep "cm: the guest's RTU established the connection at cm_peer" \
			'peer: RTU comm 0x[0-9a-f]+ -> connection 0x5000 established' "$L"
		t_grep "cm: the guest's DREQ reached cm_peer, which answered DREP" \
			'peer: DREQ comm 0x[0-9a-f]+ tid .* -> DREP' "$L"
		t_grep "cm: QEMU handed the DREP to the guest (mad recv, attr 0x0016)" \
			'rdma_mad_message mad recv \([0-9]+\): ([0-9A-F]{2} ){16}00 16 ' "$L"
		t_grep "cm: cm_peer saw one whole connection (REQ, RTU, DREQ) and exited 0" \
			'summary: reqs 1 distinct_comm_ids 1 distinct_tids 1 completed 1 active_completed 0' "$L"
		t_grep "cm: ... exit 0" '^cm_peer exit 0$' "$L"
		t_is "cm: every MAD the guest sent went to the peer, none refused (readdressed >= 3, unroutable 0)" \
			"$([ "$(val rdmacm_tx_readdressed)" -ge 3 ] 2>/dev/null && echo yes) $(val rdmacm_tx_unroutable)" "yes 0"
		t_is "cm: no CM message was unroutable at the router" "$(val rx_drop_cm_unroutable)" 0
		;;
	pipe)
		t_grep "pipe: QEMU cannot read the answer on a pipe (its own message)" \
			'Got invalid message from mux: size 0, expecting 360' "$L"
		t_is "pipe: nothing answered (REG + UNREG suppressed), no failure" \
			"$(val rdmacm_answers_suppressed) $(val rdmacm_errors_unanswered)" "2 0"
		t_is "pipe: QEMU never got an answer as a received MAD ('Not a MAD request' absent)" \
			"$(grep -c 'Not a MAD request' <<<"$L")" 0
		;;
	esac
done
t_done
