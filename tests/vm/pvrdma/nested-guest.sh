#!/bin/bash
# tests/vm/pvrdma/nested-guest.sh - runs IN the nested pvrdma guest (started by
# outer.sh; root = the outer VM's / over 9p).  MODE reg|pipe: load vmw_pvrdma, bring
# the vmxnet3 interface up (its link-local address becomes the RoCE GID that QEMU
# REGisters with the mux), print the GID table.  MODE cm: then rdma_client to the
# outer VM's rxe1 (link-local, static neighbour entry: the vmxnet3 is not connected
# to the outer VM's veth network), with the kernel's rdma_cm/ib_cm trace events.
set -u
MODE=${1:-reg}
ROOT=${ROOT:-/work/main}
MOD=${PVRDMA_KO:-$ROOT/build/pvrdma-probe/mod/vmw_pvrdma.ko}
t() { echo "nested[$(cut -d' ' -f1 /proc/uptime)s]: $*"; }
t "stage2 reached; modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
insmod "$MOD" && t "insmod vmw_pvrdma ok" || t "insmod vmw_pvrdma FAILED"
IF=""
for n in /sys/class/net/*; do
	[ "$(basename "$(readlink -f "$n/device/driver" 2>/dev/null)")" = vmxnet3 ] && IF=${n##*/}
done
t "vmxnet3 interface: ${IF:-none}; ib devices: $(ls /sys/class/infiniband 2>/dev/null | tr '\n' ' ')"
for f in all default; do echo 0 >/proc/sys/net/ipv6/conf/$f/accept_dad; done
[ -n "$IF" ] && echo 0 >/proc/sys/net/ipv6/conf/$IF/accept_dad
ip link set "$IF" up
IB=$(ls /sys/class/infiniband | head -n 1)
P=/sys/class/infiniband/$IB/ports/1
gids() {
	local i g ty out=
	for ((i = 0; i < 8; i++)); do
		read -r g <"$P/gids/$i" 2>/dev/null || continue
		[ "$g" = 0000:0000:0000:0000:0000:0000:0000:0000 ] && continue
		read -r ty <"$P/gid_attrs/types/$i" 2>/dev/null
		out+=" gid[$i]=$g ${ty// /_}"
	done
	echo "$out"
}
SECONDS=0
until [[ $(gids) == *fe80* ]] || [ $SECONDS -ge 120 ]; do sleep 0.5; done
t "after ${SECONDS}s: $IB state $(cat $P/state 2>/dev/null) phys $(cat $P/phys_state 2>/dev/null); GIDs:$(gids)"
ip -6 addr show dev "$IF" | sed 's/^/    /'
dmesg | grep -i -E 'pvrdma|vmxnet|rdma' | tail -n 20 | sed 's/^/    dmesg: /'
if [ "$MODE" = cm ]; then
	modprobe -a rdma_ucm ib_cm rdma_cm && t "rdma_ucm loaded"
	# the peer's link-local from its (expanded) GID, with builtins only
	IFS=: read -ra h <<<"$PEER_GID"
	printf -v PEER 'fe80::%x:%x:%x:%x' "0x${h[4]}" "0x${h[5]}" "0x${h[6]}" "0x${h[7]}"
	ip -6 neigh replace "$PEER" lladdr "$PEER_MAC" dev "$IF" nud permanent
	TR=/sys/kernel/tracing
	[ -e $TR/events ] || mount -t tracefs tracefs $TR
	for g in rdma_cma ib_cma; do [ -d $TR/events/$g ] && echo 1 >$TR/events/$g/enable; done
	ibv_devinfo -v -d "$IB" | grep -E 'rd_atom|max_qp:|fw_ver|transport' | sed 's/^/    devinfo: /'
	# (rping/ucmatose ask for responder resources 1, which librdmacm refuses
	# because QEMU's pvrdma reports max_qp_rd_atom 0: rdma_connect -> EINVAL)
	# rdma_client connects with conn_param NULL (no rd_atom limits): gets past librdmacm
	t "rdma_client -s $PEER%$IF"
	timeout 45 stdbuf -oL -eL rdma_client -s "$PEER%$IF" -p 7471 2>&1 | sed 's/^/    rdma_client: /'
	t "rdma_client exit ${PIPESTATUS[0]}"
	echo 0 >$TR/tracing_on
	grep -v '^#' $TR/trace | tail -n 120 | cut -c1-300 | sed 's/^/    trace: /'
	dmesg | tail -n 8 | sed 's/^/    dmesg: /'
fi
t "done"
