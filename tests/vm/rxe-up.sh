#!/bin/bash
# tests/vm/rxe-up.sh - soft-RoCE ports for the test-bed guest (run IN the guest, as root).
#
#   rxe-up.sh [N] [--ip6 ADDR[/PLEN]]... [--quiet]
#   rxe-up.sh --down
#
# Creates the veth pair veth0/veth1 (both up, IPv6 DAD off, no IPv4 at all) and
# `rdma link add rxe0 type rxe netdev veth0` (with N=2 also rxe1 on veth1), then
# waits until every port is ACTIVE, /dev/infiniband/umad0 exists and each port has
# a RoCE v2 GID for its link-local address.  --ip6 adds an extra IPv6 address to
# veth0 (repeatable; default prefix /64), which gives rxe0 a second RoCE GID; the
# script waits for that GID too.  Idempotent: existing links/devices are reused,
# so several test cases of one boot can call it.  --down removes rxe*/veth*.
#
# Prints, one line per port:  rxeN port 1 umadM <state> gid[i]=<gid> <type> ...
# Exit status: 0 ready, 1 not ready within RXE_WAIT seconds (default 20).
set -u
. "$(dirname "$0")/../lib.sh"     # rxe_umad
n=1 quiet=0 down=0 ip6=()
while [ $# -gt 0 ]; do
	case $1 in
	[12]) n=$1 ;;
	--ip6) ip6+=("$2"); shift ;;
	--ip6=*) ip6+=("${1#--ip6=}") ;;
	--quiet | -q) quiet=1 ;;
	--down) down=1 ;;
	*) echo "usage: $0 [1|2] [--ip6 ADDR[/PLEN]]... [--quiet] | --down" >&2; exit 2 ;;
	esac
	shift
done
say() { [ $quiet = 1 ] || echo "$@"; }
die() { echo "rxe-up: $*" >&2; exit 1; }

if [ $down = 1 ]; then
	for d in /sys/class/infiniband/rxe*; do [ -e "$d" ] && rdma link delete "${d##*/}" 2>/dev/null; done
	ip link del veth0 2>/dev/null
	exit 0
fi

# addresses without duplicate address detection: usable (and turned into GIDs) at once
for f in default all; do echo 0 >/proc/sys/net/ipv6/conf/$f/accept_dad; done 2>/dev/null
# (builtins where possible: every exec costs ~70 ms in the TCG guest)
if [ ! -e /sys/class/net/veth0 ]; then
	ip link add veth0 type veth peer name veth1 || die "cannot create veth0/veth1"
fi
for v in veth0 veth1; do
	read -r fl </sys/class/net/$v/flags
	(( fl & 1 )) || ip link set "$v" up || die "cannot bring $v up"
done
for a in "${ip6[@]}"; do
	case $a in */*) ;; *) a=$a/64 ;; esac
	ip -6 addr replace "$a" dev veth0 nodad || die "cannot add $a to veth0"
done
for ((i = 0; i < n; i++)); do
	[ -e /sys/class/infiniband/rxe$i ] && continue
	rdma link add "rxe$i" type rxe netdev "veth$i" || die "rdma link add rxe$i failed"
done

# --- wait until ready ---------------------------------------------------------
port_state() { local s; read -r s <"/sys/class/infiniband/$1/ports/1/state" 2>/dev/null && echo "${s// /}"; }
gids() {      # rxeN -> " gid[i]=GID TYPE" for the non-empty GID entries, one line
	# rxe has 1024 table entries, filled from the lowest free one: scan the first
	# RXE_GIDS (16) only, and with builtins
	local p=/sys/class/infiniband/$1/ports/1 g t i out=
	for ((i = 0; i < ${RXE_GIDS:-16}; i++)); do
		read -r g <"$p/gids/$i" 2>/dev/null || continue
		[ "$g" = 0000:0000:0000:0000:0000:0000:0000:0000 ] && continue
		read -r t <"$p/gid_attrs/types/$i" 2>/dev/null || t='?'
		out+=" gid[$i]=$g ${t// /_}"
	done
	echo "$out"
}
# expanded form of an IPv6 address, as in sysfs gids/N (fe80:0000:...)
expand6() {
	local a=$1 h=() t=() out=() x k r=
	if [[ $a == *::* ]]; then
		IFS=: read -ra h <<<"${a%%::*}"; IFS=: read -ra t <<<"${a#*::}"
	else
		IFS=: read -ra h <<<"$a"
	fi
	out=("${h[@]}")
	for ((k = ${#h[@]} + ${#t[@]}; k < 8; k++)); do out+=(0); done
	out+=("${t[@]}")
	for x in "${out[@]}"; do printf -v x '%04x' "0x$x"; r+=${r:+:}$x; done
	echo "$r"
}
want=()
for a in "${ip6[@]}"; do want+=("$(expand6 "${a%/*}")"); done

ready() {
	local i d g all
	[ -c /dev/infiniband/umad0 ] || return 1
	for ((i = 0; i < n; i++)); do
		d=rxe$i
		[[ $(port_state $d) == *ACTIVE* ]] || return 1
		rxe_umad $d >/dev/null || return 1
		[[ $(gids $d) == *"=fe80:"*RoCE_v2* ]] || return 1
	done
	all=$(gids rxe0)
	for g in "${want[@]}"; do [[ $all == *"=$g RoCE_v2"* ]] || return 1; done
	return 0
}
SECONDS=0
until ready; do
	if [ $SECONDS -ge "${RXE_WAIT:-20}" ]; then
		for ((i = 0; i < n; i++)); do
			echo "rxe$i: state '$(port_state rxe$i)' umad '$(rxe_umad rxe$i)' gids:$(gids rxe$i)"
		done >&2
		ls -l /dev/infiniband >&2
		die "ports not ready after ${RXE_WAIT:-20} s"
	fi
	sleep 0.1
done
for ((i = 0; i < n; i++)); do
	say "rxe$i port 1 $(rxe_umad rxe$i) $(port_state rxe$i)$(gids rxe$i)"
done
exit 0
