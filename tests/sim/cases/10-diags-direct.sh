#!/bin/bash
# 10-diags-direct.sh - baseline of the simulated fabric: unmodified
# infiniband-diags (ibstat, sminfo, ibnetdiscover, smpquery, perfquery,
# saquery, ibaddr) run directly under umad2sim on non-SM nodes (Hca2, Hca4).
# Every expected value is derived from the topology file (node ids, wiring,
# GUIDs as ibsim computes them) or cross-checked between independent tools
# (a LID the SA reports must be the LID the SMA answers on, ...).
# Needs the environment of tests/sim/run.sh (SIMFAB_DIR with a running fabric).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
: "${SIMFAB_DIR:?run through tests/sim/run.sh (or simfabric.sh start + export SIMFAB_DIR)}"
. "$SIMFAB_DIR/env.sh"

Q=Hca2				# the querying node: not the SM's (Hca1)
on() { simfab_run "$@" 2>&1; }	# on HOST cmd...: cmd as a process of node HOST
q() { on "$Q" "$@"; }
guid() { printf '0x%016x' "$1" 2>/dev/null || echo "?$1"; }	# normalise a GUID
gid() {				# port GUID -> link-local GID as the diags print it
	local g=$(($1))
	printf 'fe80::%x:%x:%x:%x' $(((g >> 48) & 0xffff)) $(((g >> 32) & 0xffff)) \
		$(((g >> 16) & 0xffff)) $((g & 0xffff))
}
# field NAME TEXT: value of the first "NAME:....value" / "NAME....value" line
# (pure bash: a fork costs ~6 ms here, sed|head ~27 ms)
field() {
	local re="^[[:space:]]*$1[:.]+[[:space:]]*(.*)\$" l
	while IFS= read -r l; do
		[[ $l =~ $re ]] && { printf '%s\n' "${BASH_REMATCH[1]}"; return; }
	done <<<"$2"
}

# ---- expected fabric, from the topology file (ibsim 0.10 sim_net.c rules):
# HCA GUIDs start at hcaguids= (default 0x100000), switch GUIDs at
# switchguid= (0x200000).  A CA takes the current GUID as node GUID and
# reserves nports+1, port N = node + N; a switch takes one, ports share it.
declare -A TYPE NPORTS NGUID PGUID DESC WIRE
NODES=()
hbase=$((0x100000)) sbase=$((0x200000)) cur=""
while IFS= read -r line; do
	case $line in
	hcaguids=* | caguid=*) hbase=$((${line#*=})) ;;
	switchguid=*) sbase=$((${line#*=})) ;;
	Switch* | Hca* | Ca*)
		read -r t n id _ <<<"$line"
		id=${id//\"/}
		cur=$id NODES+=("$id") NPORTS[$id]=$n DESC[$id]=$id
		if [ "$t" = Switch ]; then
			TYPE[$id]=Switch NGUID[$id]=$sbase PGUID[$id]=$sbase sbase=$((sbase + 1))
		else
			TYPE[$id]=CA NGUID[$id]=$hbase PGUID[$id]=$((hbase + 1)) hbase=$((hbase + n + 1))
		fi ;;
	\[*)	# [localport] "remote"[remoteport]
		[[ $line =~ ^\[([0-9]+)\][[:space:]]*\"([^\"]+)\"\[([0-9]+)\] ]] &&
			WIRE[$cur:${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}:${BASH_REMATCH[3]} ;;
	"") cur="" ;;
	esac
done <"$SIMFAB_NET"
SW=""
HCAS=()
for n in "${NODES[@]}"; do
	if [ "${TYPE[$n]}" = Switch ]; then SW=$n; else HCAS+=("$n"); fi
done
t_diag <<<"topology $SIMFAB_NET: switch $SW, CAs ${HCAS[*]}; querying from $Q"
t_is "topology: 1 switch with 8 ports and 4 CAs" "$SW/${NPORTS[$SW]:-}/${#HCAS[@]}" "Switch1/8/4"

# ---- ibstat on the querying node (fake sysfs that umad2sim builds from ibsim)
out=$(q ibstat)
t_grep "ibstat: CA 'ibsim0' with 1 port" "CA 'ibsim0'" "$out"
t_is "ibstat: node GUID of $Q" "$(guid "$(field 'Node GUID' "$out")")" "$(guid "${NGUID[$Q]}")"
t_is "ibstat: port GUID of $Q" "$(guid "$(field 'Port GUID' "$out")")" "$(guid "${PGUID[$Q]}")"
t_is "ibstat: port state Active/LinkUp" "$(field State "$out")/$(field 'Physical state' "$out")" "Active/LinkUp"
MYLID=$(field 'Base lid' "$out")
SMLID=$(field 'SM lid' "$out")
t_grep "ibstat: $Q has a LID and knows the SM's LID" '^[1-9][0-9]* [1-9][0-9]*$' "$MYLID $SMLID"

# ---- sminfo: the SM is OpenSM on Hca1, master, at the LID ibstat reports
out=$(q sminfo)
re='sm lid ([0-9]+) sm guid (0x[0-9a-f]+), activity count [0-9]+ priority [0-9]+ state ([0-9]+) (SMINFO_[A-Z]+)'
if [[ $out =~ $re ]]; then
	t_is "sminfo: SM GUID is Hca1's port GUID" "$(guid "${BASH_REMATCH[2]}")" "$(guid "${PGUID[Hca1]}")"
	t_is "sminfo: SM state 3 SMINFO_MASTER" "${BASH_REMATCH[3]} ${BASH_REMATCH[4]}" "3 SMINFO_MASTER"
	t_is "sminfo: SM LID equals ibstat's SM lid" "${BASH_REMATCH[1]}" "$SMLID"
else
	t_fail "sminfo output parsed" "$out"
fi

# ---- ibnetdiscover: every node, every link, every LID
out=$(q ibnetdiscover)
t_is "ibnetdiscover: initiated from $Q's node and port GUID" \
	"$(sed -nE 's/^# Initiated from node ([0-9a-f]+) port ([0-9a-f]+).*/0x\1 0x\2/p' <<<"$out")" \
	"$(printf '0x%016x 0x%016x' "${NGUID[$Q]}" "${PGUID[$Q]}")"
t_is "ibnetdiscover: 1 switch and 4 CAs" \
	"$(grep -cE '^Switch[[:space:]]' <<<"$out") $(grep -cE '^Ca[[:space:]]' <<<"$out")" "1 4"
swhdr=$(grep -E '^Switch[[:space:]]' <<<"$out")
re='^Switch[[:space:]]+([0-9]+)[[:space:]]+"S-([0-9a-f]+)".*# "([^"]*)" base port 0 lid ([0-9]+)'
declare -A LID
if [[ $swhdr =~ $re ]]; then
	t_is "ibnetdiscover: switch has 8 ports, GUID and description from the topology" \
		"${BASH_REMATCH[1]} $(guid "0x${BASH_REMATCH[2]}") ${BASH_REMATCH[3]}" \
		"${NPORTS[$SW]} $(guid "${NGUID[$SW]}") ${DESC[$SW]}"
	LID[$SW]=${BASH_REMATCH[4]}
else
	t_fail "ibnetdiscover: switch header parsed" "$swhdr"
fi
# switch port lines: [k] "H-<nodeguid>"[p](<portguid>)   # "Hcax" lid L 4xSDR
swblock=$(sed -n '/^Switch/,/^$/p' <<<"$out")
for h in "${HCAS[@]}"; do
	k="" p=""
	for key in "${!WIRE[@]}"; do
		[ "${key%%:*}" = "$SW" ] && [ "${WIRE[$key]%%:*}" = "$h" ] && k=${key#*:} p=${WIRE[$key]#*:}
	done
	ln=$(grep -E "^\[$k\][[:space:]]" <<<"$swblock")
	re='^\[([0-9]+)\][[:space:]]+"H-([0-9a-f]+)"\[([0-9]+)\]\(([0-9a-f]+)\).*# "([^"]*)" lid ([0-9]+)'
	if [[ $ln =~ $re ]]; then
		t_is "ibnetdiscover: $SW port $k -> $h port $p (node/port GUID, description)" \
			"$(guid "0x${BASH_REMATCH[2]}") ${BASH_REMATCH[3]} $(guid "0x${BASH_REMATCH[4]}") ${BASH_REMATCH[5]}" \
			"$(guid "${NGUID[$h]}") $p $(guid "${PGUID[$h]}") $h"
		LID[$h]=${BASH_REMATCH[6]}
	else
		t_fail "ibnetdiscover: $SW port $k -> $h" "line '$ln'"
	fi
	# and the CA's own record points back at the same switch port
	cab=$(sed -n "/^Ca.*\"H-$(printf '%016x' "${NGUID[$h]}")\"/,/^\$/p" <<<"$out")
	t_grep "ibnetdiscover: $h port $p -> $SW port $k" \
		"^\[$p\]\($(printf '%x' "${PGUID[$h]}")\)[[:space:]]+\"S-$(printf '%016x' "${NGUID[$SW]}")\"\[$k\]" "$cab"
done
t_diag <<<"LIDs from ibnetdiscover: $(for n in "${NODES[@]}"; do printf '%s=%s ' "$n" "${LID[$n]:-?}"; done)"

# ---- LIDs: distinct, OpenSM's plan, and the same from every point of view
t_is "LIDs: 5 distinct non-zero LIDs" \
	"$(for n in "${NODES[@]}"; do echo "${LID[$n]:-0}"; done | grep -v '^0$' | sort -u | wc -l)" 5
t_is "LIDs: OpenSM on a fresh fabric assigns SM=1, switch=2, then Hca2..4=3..5" \
	"${LID[Hca1]:-}/${LID[Switch1]:-}/${LID[Hca2]:-}/${LID[Hca3]:-}/${LID[Hca4]:-}" "1/2/3/4/5"
t_is "LIDs: the SM's LID is Hca1's" "$SMLID" "${LID[Hca1]:-}"
for h in "${HCAS[@]}"; do
	v=SIMFAB_LID_$h			# ibstat run on that node by simfabric.sh start
	t_is "LIDs: $h's own ibstat (on $h) agrees with ibnetdiscover" "${!v:-}" "${LID[$h]:-}"
done
t_is "LIDs: $Q's ibstat agrees with ibnetdiscover" "$MYLID" "${LID[$Q]:-}"

# ---- smpquery by LID (SMA answered by ibsim) for every node
for n in "${NODES[@]}"; do
	l=${LID[$n]:-0}
	out=$(q smpquery nodeinfo "$l")
	want_type=$([ "${TYPE[$n]}" = Switch ] && echo Switch || echo "Channel Adapter")
	t_is "smpquery nodeinfo $l: $n's type, ports, node and port GUID" \
		"$(field NodeType "$out")|$(field NumPorts "$out")|$(guid "$(field Guid "$out")")|$(guid "$(field PortGuid "$out")")" \
		"$want_type|${NPORTS[$n]}|$(guid "${NGUID[$n]}")|$(guid "${PGUID[$n]}")"
	t_is "smpquery nodedesc $l: \"$n\"" "$(field 'Node Description' "$(q smpquery nodedesc "$l")")" "${DESC[$n]}"
done
for h in "${HCAS[@]}"; do
	out=$(q smpquery portinfo "${LID[$h]:-0}" 1)
	t_is "smpquery portinfo ${LID[$h]:-0} 1: $h's Lid, SMLid, LinkState, PhysLinkState" \
		"$(field Lid "$out") $(field SMLid "$out") $(field LinkState "$out") $(field PhysLinkState "$out")" \
		"${LID[$h]:-} $SMLID Active LinkUp"
done
# directed route (no LIDs involved): 0,1 = the switch seen through our port
out=$(q smpquery -D nodeinfo 0,1)
t_is "smpquery -D nodeinfo 0,1: the switch, entered on the port $Q is wired to" \
	"$(guid "$(field Guid "$out")") $(field LocalPort "$out")" \
	"$(guid "${NGUID[$SW]}") $(for key in "${!WIRE[@]}"; do [ "${WIRE[$key]}" = "$Q:1" ] && echo "${key#*:}"; done)"
for key in "${!WIRE[@]}"; do
	[ "${key%%:*}" = "$SW" ] || continue
	k=${key#*:}
	t_is "smpquery -D nodedesc 0,1,$k: switch port $k leads to ${WIRE[$key]%%:*}" \
		"$(field 'Node Description' "$(q smpquery -D nodedesc "0,1,$k")")" "${WIRE[$key]%%:*}"
done

# ---- perfquery (PMA answered by ibsim); target: Hca3 port 1
TL=${LID[Hca3]:-0}
out=$(q perfquery "$TL" 1)
t_grep "perfquery $TL 1: header names LID $TL port 1" "^# Port counters: Lid $TL port 1 " "$out"
t_is "perfquery $TL 1: PortSelect 1, CounterSelect 0x0000" "$(field PortSelect "$out") $(field CounterSelect "$out")" "1 0x0000"
missing=""
for f in SymbolErrorCounter LinkErrorRecoveryCounter LinkDownedCounter PortRcvErrors \
	PortRcvRemotePhysicalErrors PortRcvSwitchRelayErrors PortXmitDiscards PortXmitConstraintErrors \
	PortRcvConstraintErrors LocalLinkIntegrityErrors ExcessiveBufferOverrunErrors VL15Dropped \
	PortXmitData PortRcvData PortXmitPkts PortRcvPkts; do
	[[ $(field "$f" "$out") =~ ^[0-9]+$ ]] || missing="$missing $f"
done
t_is "perfquery $TL 1: all 16 PortCounters fields present and numeric" "${missing# }" ""
t_is "perfquery $TL 1: error counters are 0 on a clean fabric" \
	"$(field SymbolErrorCounter "$out")$(field LinkDownedCounter "$out")$(field PortRcvErrors "$out")$(field PortXmitDiscards "$out")" "0000"
x1=$(field PortXmitPkts "$out") r1=$(field PortRcvPkts "$out")
out=$(q perfquery "$TL" 1)
x2=$(field PortXmitPkts "$out") r2=$(field PortRcvPkts "$out")
t_grep "perfquery: ibsim counts our MADs (Xmit/RcvPkts $x1/$r1 -> $x2/$r2)" '^ok$' \
	"$([ "${x2:-0}" -gt "${x1:-0}" ] && [ "${r2:-0}" -gt "${r1:-0}" ] && echo ok)"
q perfquery -R "$TL" 1 >/dev/null
out=$(q perfquery "$TL" 1)
x3=$(field PortXmitPkts "$out")
# after the reset only the reset, this query and maybe an OpenSM light sweep count
t_grep "perfquery -R resets the counters (XmitPkts $x2 -> $x3)" '^ok$' \
	"$([ "${x3:-99999}" -lt "${x2:-0}" ] && [ "${x3:-99}" -le 10 ] && echo ok)"
out=$(q perfquery -x "$TL" 1)
t_grep "perfquery -x $TL 1: extended counters, PortSelect 1" "^# Port extended counters: Lid $TL port 1 " "$out"
t_grep "perfquery -x $TL 1: 64-bit PortXmitData/PortUnicastXmitPkts present" '^ok$' \
	"$([[ $(field PortXmitData "$out") =~ ^[0-9]+$ && $(field PortUnicastXmitPkts "$out") =~ ^[0-9]+$ ]] && echo ok)"
out=$(q perfquery "${LID[$SW]:-0}" 3)
t_is "perfquery ${LID[$SW]:-0} 3: switch port 3's counters (PortSelect 3)" "$(field PortSelect "$out")" 3

# ---- saquery (SA = OpenSM on Hca1)
for n in "${NODES[@]}"; do
	l=${LID[$n]:-0}
	out=$(q saquery NR "$l")
	want_type=$([ "${TYPE[$n]}" = Switch ] && echo Switch || echo "Channel Adapter")
	t_is "saquery NR $l: NodeRecord of $n (lid, type, node/port GUID, description)" \
		"$(field lid "$out")|$(field node_type "$out")|$(guid "$(field node_guid "$out")")|$(guid "$(field port_guid "$out")")|$(field NodeDescription "$out")" \
		"$l|$want_type|$(guid "${NGUID[$n]}")|$(guid "${PGUID[$n]}")|${DESC[$n]}"
done
# the LID the SA resolves for Hca3's port GID (computed from the topology
# only) must be the LID on which the SMA answers as Hca3
out=$(q saquery -p --sgid-to-dgid "$(gid "${PGUID[$Q]}")-$(gid "${PGUID[Hca3]}")")
dl=$(field dlid "$out") sl=$(field slid "$out")
t_is "saquery PathRecord $Q->Hca3 by GID: slid is $Q's LID" "$sl" "$MYLID"
t_is "smpquery answers as Hca3 on the dlid the SA gave (${dl:-none})" \
	"$(field 'Node Description' "$(q smpquery nodedesc "${dl:-0}")")|$(guid "$(field PortGuid "$(q smpquery nodeinfo "${dl:-0}")")")" \
	"Hca3|$(guid "${PGUID[Hca3]}")"
for h in "${HCAS[@]}"; do
	k=""
	for key in "${!WIRE[@]}"; do [ "${WIRE[$key]}" = "$h:1" ] && k=${key#*:}; done
	out=$(q saquery LR "${LID[$h]:-0}/1")
	t_is "saquery LR ${LID[$h]:-0}/1: $h port 1 -> $SW (LID ${LID[$SW]:-}) port $k" \
		"$(field ToLID "$out")/$(field ToPort "$out")" "${LID[$SW]:-}/$k"
done
out=$(q saquery SMIR)
t_is "saquery SMIR: SM record (LID, GUID, state MASTER=3)" \
	"$(field LID "$out") $(guid "$(field GUID "$out")") $(field SMState "$out")" "$SMLID $(guid "${PGUID[Hca1]}") 3"
out=$(q saquery -s)
t_is "saquery -s: the IsSM PortInfoRecord is the SM's port" "$(field base_lid "$out")" "$SMLID"
# GetTable of all NodeRecords: the SA sends 5 records (540 bytes, RMPP), but
# umad2sim passes one 256-byte MAD only, so 1 record arrives (see README)
out=$(q saquery NR)
cnt=$(grep -c '^NodeRecord dump' <<<"$out") cnt2=$(grep -c 'NodeDescription' <<<"$out")
t_diag <<<"saquery NR (GetTable, all nodes) returned $cnt2 of ${#NODES[@]} NodeRecords"
t_is "saquery NR: GetTable answered, first record is LID ${LID[Hca1]:-}'s (Hca1)" \
	"$cnt $(field lid "$out") $(field NodeDescription "$out")" "1 ${LID[Hca1]:-} Hca1"

# ---- another non-SM node sees the same fabric from its own port
out=$(on Hca4 ibaddr)
t_is "ibaddr on Hca4: its GID (from its port GUID) and LID" "$out" \
	"GID $(gid "${PGUID[Hca4]}") LID start $(printf '0x%x' "${LID[Hca4]:-0}") end $(printf '0x%x' "${LID[Hca4]:-0}")"
t_is "smpquery nodedesc from Hca4 to Hca3's LID" \
	"$(field 'Node Description' "$(on Hca4 smpquery nodedesc "${LID[Hca3]:-0}")")" Hca3
t_done
