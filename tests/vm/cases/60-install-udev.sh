#!/bin/bash
# 60-install-udev.sh - umad-mux as an operator installs it, on the real kernel
# (run IN the VM guest, as root; the guest's / is an overlay, so `make
# install` to / changes nothing on the host).
#   * make install (DESTDIR empty, PREFIX /usr/local): binaries, rules, unit,
#     config, man pages in place
#   * systemd-udevd with the installed rules: rxe0's umad0 gets TAGS systemd,
#     SYSTEMD_WANTS=umad-mux@rxe0:1.service and the rdma alias the unit binds to
#   * the unit's ExecCondition and ExecStart command lines (%I = rxe0:1), the
#     daemon under no_new_privs with only CAP_CHOWN+CAP_FOWNER (the unit's
#     bounding set): READY=1 on $NOTIFY_SOCKET, the configured nodes with the
#     config's mode/group, udev symlinks /dev/infiniband/umad-mux/rxe0-1/N,
#     udev itself re-applies mode/group
#   * umad-muxctl: per-client and per-node counters move when clients send
#     MADs through the symlinks (a responder on node 0, a client on node 1,
#     a timeout on node 2)
#   * add-node: a usable new /dev/umad-mux-N at once (open, REGISTER_AGENT2,
#     round trips), with its symlink and the config's policy for that number;
#     remove-node; reload; SIGTERM removes nodes, info files and symlinks
#   * make uninstall
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
T=$T_BUILD/tests/tools
INST=rxe0:1
W=$(mktemp -d /tmp/mux-inst.XXXXXX)
dpid="" rpid="" udevd=0
cleanup() {
	[ -n "$rpid" ] && kill -TERM "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	[ $udevd = 1 ] && udevadm control --exit 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
ms() { date +%s%3N; }
settle() { udevadm settle --timeout=20; }

"$HERE/../rxe-up.sh" --quiet || { t_fail "rxe0 up"; exit 1; }
[ -c /dev/cuse ] || { t_fail "CUSE available (/dev/cuse)"; exit 1; }
read -r GID GIDX <<<"$(rxe_roce_gid rxe0)"
umad=$(cd /sys/class/infiniband_mad && for u in umad*; do [ "$(cat $u/ibdev)" = rxe0 ] && echo $u && break; done)
t_grep "rxe0 port 1 has a umad device and a RoCE v2 GID" '^umad[0-9]+ [0-9a-f:]+ [0-9]+$' "$umad $GID $GIDX"
t_grep "/proc/devices names the umad major infiniband_mad (the unit's DeviceAllow=char-infiniband_mad)" \
	'^ *[0-9]+ infiniband_mad$' "$(sed -n '/^Character/,/^$/p' /proc/devices)"

# ---- make install to /
t0=$(ms)
out=$(make -C "$T_ROOT" --no-print-directory BUILD="${BUILD:-build}" SANITIZE="${SANITIZE:-}" install 2>&1); rc=$?
t_is "make install (DESTDIR empty, PREFIX /usr/local): exit 0 ($(( $(ms) - t0 )) ms)" "$rc" 0
[ $rc = 0 ] || t_diag <<<"$out"
missing=""
for f in /usr/local/sbin/umad-mux /usr/local/sbin/umad-muxctl /usr/local/sbin/umad-mux-exec \
	/usr/local/lib/udev/rules.d/92-umad-mux.rules /usr/local/lib/systemd/system/umad-mux@.service \
	/etc/umad-mux/umad-mux.conf /usr/local/share/man/man8/umad-mux.8 /usr/local/share/man/man8/umad-muxctl.8 \
	/usr/local/share/man/man5/umad-mux.conf.5; do
	[ -e "$f" ] || missing="$missing $f"
done
t_is "installed: binaries, rules, unit, config, man pages" "$missing" ""
U=/usr/local/lib/systemd/system/umad-mux@.service
cat >/etc/umad-mux/umad-mux.conf <<'EOF'
ports rxe0:1
nodes 3
owner root:disk
mode-bits 0660
node 4 classes 0x0a
[mlx5_0:1]
nodes 1
EOF

# ---- udevd with the installed rules: the unit name for rxe0 port 1
t0=$(ms)
/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1 && udevd=1
t_is "systemd-udevd started" "$udevd" 1
udevadm trigger --action=add --subsystem-match=infiniband_mad
settle
props=$(udevadm info --query=property --path=/sys/class/infiniband_mad/$umad)
t_grep "udev: $umad wants umad-mux@rxe0:1.service ($(( $(ms) - t0 )) ms)" '^SYSTEMD_WANTS=(.* )?umad-mux@rxe0:1\.service( |$)' "$props"
t_grep "udev: $umad tagged for systemd" '^(CURRENT_)?TAGS=.*:systemd:' "$props"
t_grep "udev: $umad has the alias the unit binds to" '^SYSTEMD_ALIAS=/sys/subsystem/rdma/devices/rxe0:1/umad$' "$props"
t_grep "unit binds to that device unit" "^BindsTo=sys-subsystem-rdma-devices-%i-umad.device$" "$(cat "$U")"
t_is "systemd-escape of the alias gives that name for %i=rxe0:1" \
	"$(systemd-escape --path /sys/subsystem/rdma/devices/rxe0:1/umad)" "sys-subsystem-rdma-devices-rxe0:1-umad"
tst=$(udevadm test --action=add /sys/class/infiniband_mad/$umad 2>&1)
t_grep "udevadm test reads /usr/local/lib/udev/rules.d/92-umad-mux.rules" "92-umad-mux.rules" "$tst"

# ---- the unit's command lines for instance rxe0:1
cmdline() { sed -n "s/^$1=//p" "$U" | sed "s/%I/$INST/g; s/%i/$INST/g"; }
t_grep "unit: Type=notify, ExecStart --instance %I" "^/usr/local/sbin/umad-mux --foreground --instance $INST --config /etc/umad-mux/umad-mux.conf --control /run/umad-mux/$INST/control$" "$(cmdline ExecStart)"
# shellcheck disable=SC2046
$(cmdline ExecCondition) 2>/dev/null; rc=$?
t_is "ExecCondition for rxe0:1: 0 (runs)" "$rc" 0
$(cmdline ExecCondition | sed "s/$INST/mlx5_0:1/") 2>/dev/null; rc=$?
t_is "ExecCondition for mlx5_0:1 (not in ports): 1 (skipped)" "$rc" 1
# RuntimeDirectory= as systemd would create it
mkdir -p "/run/umad-mux/$INST" /run/umad-mux/devices
python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(20)
try: print(s.recv(256).decode())
except Exception as e: print("none", e)' "$W/notify" >"$W/notify.out" 2>&1 &
npid=$!
for _ in $(seq 100); do [ -S "$W/notify" ] && break; sleep 0.02; done
t0=$(ms)
# the unit's hardening that can run without systemd: no new privileges and
# the capability bounding set
NOTIFY_SOCKET=$W/notify setpriv --no-new-privs --bounding-set=-all,+chown,+fowner \
	$(cmdline ExecStart) >"$W/d.log" 2>&1 &
dpid=$!
wait $npid
t_is "READY=1 on \$NOTIFY_SOCKET ($(( $(ms) - t0 )) ms)" "$(cat "$W/notify.out")" "READY=1"
t_is "daemon runs with CapEff = CAP_CHOWN|CAP_FOWNER and NoNewPrivs" \
	"$(awk '/^CapEff|^NoNewPrivs/ { printf "%s ", $2 }' /proc/$dpid/status)" "0000000000000009 1 "
t_grep "daemon log: ready with the 3 configured nodes" "ready: 3 CUSE nodes /dev/umad-mux-0..2 on rxe0 port 1" "$(cat "$W/d.log")"
settle
t_is "nodes /dev/umad-mux-0..2: char devices, mode 0660, group disk" \
	"$(stat -c '%F %a %U:%G' /dev/umad-mux-{0..2} 2>&1 | sort -u)" "character special file 660 root:disk"
t_is "udev symlinks /dev/infiniband/umad-mux/rxe0-1/0..2 -> the nodes" \
	"$(for i in 0 1 2; do readlink -f /dev/infiniband/umad-mux/rxe0-1/$i; done | tr '\n' ' ')" \
	"/dev/umad-mux-0 /dev/umad-mux-1 /dev/umad-mux-2 "
t_is "udev info files in /run/umad-mux/devices" "$(ls /run/umad-mux/devices | tr '\n' ' ')" "umad-mux-0 umad-mux-1 umad-mux-2 "
nprops=$(udevadm info --query=property --name=/dev/umad-mux-1)
t_grep "udev: node 1 imported ibdev/port/node and is tagged for systemd" \
	"UMAD_MUX_IBDEV=rxe0.UMAD_MUX_PORT=1.UMAD_MUX_NODE=1.*" "$(grep -E '^UMAD_MUX_(IBDEV|PORT|NODE)=' <<<"$nprops" | tr '\n' '.')"
t_grep "udev: node 1 TAGS systemd" '^(CURRENT_)?TAGS=.*:systemd:' "$nprops"
chmod 0600 /dev/umad-mux-1; chgrp root /dev/umad-mux-1
udevadm trigger --action=change /sys/class/cuse/umad-mux-1
settle
t_is "udev itself applies the config's mode/group (after chmod 600/chgrp root + change event)" \
	"$(stat -c '%a %G' /dev/umad-mux-1)" "660 disk"

# ---- umad-muxctl (the installed one finds /run/umad-mux/rxe0:1/control)
CTL=/usr/local/sbin/umad-muxctl
out=$($CTL list); rc=$?
t_is "umad-muxctl list: 3 nodes, no -s needed" "$rc $(grep -c '^node ' <<<"$out")" "0 3"
val() { sed -n "s/^$1  *//p" <<<"$2"; }
s0=$($CTL stats)
"$T/mux_vmclient" responder /dev/infiniband/umad-mux/rxe0-1/0 0x0a 0x0b >"$W/resp.log" 2>&1 &
rpid=$!
for _ in $(seq 100); do grep -q ready "$W/resp.log" && break; sleep 0.05; done
N=20
out=$("$T/mux_vmclient" client /dev/infiniband/umad-mux/rxe0-1/1 7 0x0a $N "$GID" "$GIDX" 2>&1); rc=$?
t_is "client on node 1 (via its symlink): $N round trips to the responder on node 0 ($out)" "$rc" 0
out=$("$T/mux_vmclient" timeout /dev/infiniband/umad-mux/rxe0-1/2 0x0b "$GID" "$GIDX" 200 0 2>&1); rc=$?
t_is "timeout client on node 2: its send comes back with ETIMEDOUT ($out)" "$rc" 0
s1=$($CTL stats)
t_is "stats: tx_packets moved by 2 x $N + 1" "$(( $(val tx_packets "$s1") - $(val tx_packets "$s0") ))" $((2 * N + 1))
t_is "stats: rx_timeouts moved by 1" "$(( $(val rx_timeouts "$s1") - $(val rx_timeouts "$s0") ))" 1
raw=$($CTL -r list)
t_grep "list: the responder's open file on node 0 received $N Gets + the timeout client's Get, sent $N, 2 agents" \
	"^file [0-9]+ node 0 pid $rpid header new agents 2 queued 0 outstanding 0 sent $N received $((N + 1)) timeouts 0 refused_policy 0" "$raw"
t_grep "list: its agent 0 owns Get of class 0x0a" "^agent [0-9]+\.0 qpn 1 class 0x0a version 1 rmpp 0 oui 0x000000 methods 0x01 outstanding 0$" "$raw"
t_grep "list: node 1 counters: $N sent, $N delivered" "^counters 1 rx_packets 0 rx_delivered $N .* tx_packets $N " "$raw"
t_grep "list: node 2 counters: 1 timeout" "^counters 2 .*rx_timeouts 1 " "$raw"
t_diag <<<"$($CTL list)"

# ---- add-node: usable at once
t0=$(ms)
out=$($CTL add-node); rc=$?
t_is "umad-muxctl add-node: node 3 ($(( $(ms) - t0 )) ms)" "$rc $out" "0 node 3 name umad-mux-3 path /dev/umad-mux-3"
out=$("$T/mux_vmclient" client /dev/umad-mux-3 9 0x0a 5 "$GID" "$GIDX" 2>&1); rc=$?
t_is "the new node right away: open, REGISTER_AGENT2, 5 round trips ($out)" "$rc" 0
settle
t_is "new node: mode 0660 group disk, symlink rxe0-1/3" \
	"$(stat -c '%a %G' /dev/umad-mux-3) $(readlink -f /dev/infiniband/umad-mux/rxe0-1/3)" "660 disk /dev/umad-mux-3"
out=$($CTL add-node 4)
t_is "umad-muxctl add-node 4" "$out" "node 4 name umad-mux-4 path /dev/umad-mux-4"
out=$("$T/mux_vmclient" client /dev/umad-mux-4 10 0x04 1 "$GID" "$GIDX" 2>&1); rc=$?
t_grep "node 4 has the config's 'node 4 classes 0x0a': PerfMgt registration refused (EPERM)" \
	"REGISTER_AGENT2 class 0x04: Operation not permitted" "$rc $out"
t_grep "list: node 4 counted the refusal" "^counters 4 .*reg_refused_policy 1 " "$($CTL -r list)"
out=$($CTL remove-node 3); rc=$?
settle
t_is "remove-node 3: device, info file and symlink gone" \
	"$rc $(ls /dev/umad-mux-3 /run/umad-mux/devices/umad-mux-3 /dev/infiniband/umad-mux/rxe0-1/3 2>/dev/null | wc -l)" "0 0"

# ---- reload
sed -i 's/^mode-bits 0660/mode-bits 0640/' /etc/umad-mux/umad-mux.conf
out=$($CTL reload); rc=$?
t_is "umad-muxctl reload: exit 0" "$rc" 0
t_is "reload: every node now 0640" "$(stat -c '%a' /dev/umad-mux-{0,1,2,4} | sort -u)" 640
t_grep "reload: udev info files carry the new mode" "^UMAD_MUX_MODE=0640$" "$(cat /run/umad-mux/devices/umad-mux-4)"
sed -i '1i nodes 0' /etc/umad-mux/umad-mux.conf
out=$($CTL reload 2>&1); rc=$?
t_is "reload of a bad config: exit 1, file:line" "$rc $out" "1 umad-muxctl: reload: /etc/umad-mux/umad-mux.conf:1: bad node count '0' (1-256)"
t_is "the daemon keeps running after a bad reload" "$(kill -0 "$dpid" && echo yes)" yes

# ---- shutdown
kill -TERM "$rpid"; wait "$rpid" 2>/dev/null; rpid=""
kill -TERM "$dpid"; wait "$dpid"; rc=$?; dpid=""
settle
t_is "SIGTERM: exit 0" "$rc" 0
t_is "SIGTERM: nodes, info files and symlinks gone" \
	"$(ls /dev/umad-mux-* /run/umad-mux/devices/* /dev/infiniband/umad-mux/rxe0-1/* 2>/dev/null | wc -l)" 0
t_diag <"$W/d.log"
udevadm control --exit; udevd=0

out=$(make -C "$T_ROOT" --no-print-directory uninstall 2>&1); rc=$?
t_is "make uninstall: exit 0, files gone, the edited config kept" \
	"$rc $(ls /usr/local/sbin/umad-mux* $U /usr/local/lib/udev/rules.d/92-umad-mux.rules 2>/dev/null | wc -l) $(ls /etc/umad-mux)" \
	"0 0 umad-mux.conf"
t_done
