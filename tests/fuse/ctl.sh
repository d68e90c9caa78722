#!/bin/bash
# tests/fuse/ctl.sh - part of suite "fuse" (tests/fuse/run.sh runs it): the
# configuration file, umad-muxctl and `make install` on this host.
#  * bad config files (sections, ports, node keys): one line file:line, exit 2;
#    --check-instance exit codes (0 / 1 / 255) as the unit's ExecCondition
#  * FUSE mode on a private simulated fabric with --instance and a config with
#    a [ibsim0:1] section: umad-muxctl list/stats/add-node/remove-node/reload
#    (policies and modes applied, bad config reported with file:line and
#    changing nothing), SIGHUP reload, ctl usage and connection errors
#  * make install/uninstall into a scratch PREFIX: files, the unit's paths,
#    systemd-analyze verify, man pages render without warnings
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib.sh"
D=$T_BUILD/umad-mux C=$T_BUILD/umad-muxctl
[ -x "$D" ] && [ -x "$C" ] || { t_fail "daemon and umad-muxctl built"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/umx-ctl.XXXXXX")
dpid="" rpid="" fabric=0
cleanup() {
	[ -n "$rpid" ] && kill -TERM "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	grep -q " $W/mnt fuse" /proc/mounts && fusermount3 -u "$W/mnt" 2>/dev/null
	[ $fabric = 1 ] && SIMFAB_DIR=$W/fab "$T_ROOT/tests/sim/simfabric.sh" stop >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT
cd "$W" || exit 1
run() { local e; e=$("$@" 2>&1 >/dev/null); echo "$?|$e"; }

# ---- config errors: one line with file:line, exit 2
cfg() { printf "$1" >bad.conf; run "$D" -f --mode fuse --fuse-dir "$W" --instance rxe0:1 --config bad.conf; }
t_is "config: section without ']'" "$(cfg 'nodes 2\n[rxe0:1\n')" "2|bad.conf:2: bad section '[rxe0:1' ([IBDEV:PORT], e.g. [mlx5_0:1])"
t_is "config: section without port" "$(cfg '[rxe0]\n')" "2|bad.conf:1: bad section '[rxe0]' ([IBDEV:PORT], e.g. [mlx5_0:1])"
t_is "config: 'ports' inside a section (of another port too)" "$(cfg '[mlx5_0:1]\nports all\n')" \
	"2|bad.conf:2: 'ports' belongs before the first [IBDEV:PORT] section"
t_is "config: bad ports list" "$(cfg 'ports rxe0:1,mlx5_0\n')" "2|bad.conf:1: bad ports 'rxe0:1,mlx5_0' (all, or IBDEV:PORT[,IBDEV:PORT...])"
t_is "config: bad value in our own section" "$(cfg '[mlx5_0:1]\nnodes 0\n[rxe0:1]\n\nmode-bits 0800\n')" \
	"2|bad.conf:5: bad mode bits '0800' (octal, at most 0777)"
t_is "config: node key with a bad value" "$(cfg 'node 3 classes 0x0a,0x100\n')" "2|bad.conf:1: node 3: bad classes '0x0a,0x100'"
t_is "config: unknown node key" "$(cfg 'node 1 frobnicate yes\n')" "2|bad.conf:1: node 1: unknown key 'frobnicate'"
t_is "config: 'node' without a value" "$(cfg 'node 1 privileged\n')" "2|bad.conf:1: 'node' wants: node N KEY VALUE"
t_is "config: bad limit" "$(cfg 'recv-queue-max 0\n')" "2|bad.conf:1: bad recv-queue-max '0' (1-1000000)"
t_is "--instance without a port: exit 2" "$(run "$D" --instance rxe0)" "2|umad-mux: bad instance 'rxe0' (IBDEV:PORT, e.g. mlx5_0:1)"
printf 'ports rxe0:1, mlx5_0:2\n' >p.conf
t_is "--check-instance: a listed port -> 0" "$(run "$D" --check-instance --instance mlx5_0:2 --config p.conf)" "0|"
t_is "--check-instance: another port -> 1 (unit skipped)" "$(run "$D" --check-instance --instance rxe1:1 --config p.conf)" \
	"1|umad-mux: rxe1:1 is not in the config's ports (rxe0:1, mlx5_0:2)"
printf 'nodes 2\n' >all.conf
t_is "--check-instance: no 'ports' key -> every port" "$(run "$D" --check-instance --instance rxe9:3 --config all.conf)" "0|"
printf 'ports rxe0:1\nnodes x\n' >p2.conf
t_is "--check-instance: config error -> 255 (unit fails)" "$(run "$D" --check-instance --instance rxe0:1 --config p2.conf)" \
	"255|p2.conf:2: bad node count 'x' (1-256)"
t_is "--check-instance without --instance -> 255" "$(run "$D" --check-instance --config p.conf)" \
	"255|umad-mux: --check-instance needs --instance IBDEV:PORT"
t_is "the installed example config is valid" "$(run "$D" --check-instance --instance rxe0:1 --config "$T_ROOT/udev/umad-mux.conf")" "0|"

# ---- umad-muxctl usage and connection errors
out=$(run "$C" -s x)
t_is "ctl: no command -> 2 with usage" "${out%%|*} $(grep -c 'remove-node N' <<<"$out")" "2 1"
t_is "ctl: unknown command -> 2" "$(run "$C" -s x frob)" "2|umad-muxctl: unknown command 'frob' (try --help)"
t_is "ctl: remove-node without a number -> 2" "$(run "$C" -s x remove-node)" "2|umad-muxctl: remove-node takes a node number (try --help)"
t_is "ctl: bad node number -> 2" "$(run "$C" -s x add-node x1)" "2|umad-muxctl: add-node: bad node number 'x1'"
t_grep "ctl: no daemon -> 1, names the socket" "^1\|umad-muxctl: cannot connect to $W/none: No such file" "$(run "$C" -s "$W/none" list)"

# ---- FUSE mode on a private simulated fabric
if ! command -v ibsim >/dev/null; then t_fail "simulated fabric available" "run tests/deps.sh"; exit 1; fi
export SIMFAB_DIR=$W/fab
unset IBSIM_SOCKNAME
"$T_ROOT/tests/sim/simfabric.sh" start >fab.log 2>&1 || { t_diag <fab.log; t_fail "private fabric started"; exit 1; }
fabric=1
. "$SIMFAB_DIR/env.sh"
mkdir mnt
cat >d.conf <<EOF
# test config
nodes 2
mode-bits 0600
node 1 classes 0x04      # PerfMgt only
node 5 classes 0x0a
[mlx5_0:1]
mode-bits 0666
[ibsim0:1]
mode-bits 0640
EOF
"$T_ROOT/tests/sim/simfabric.sh" run Hca4 "$D" -f --mode fuse --fuse-dir "$W/mnt" --instance ibsim0:1 \
	--config "$W/d.conf" --control "$W/ctl" >d.log 2>&1 &
dpid=$!
for _ in $(seq 100); do grep -q "ready:" d.log && break; sleep 0.05; done
t_grep "daemon ready on --instance ibsim0:1" "ready: 2 FUSE files $W/mnt/umad-mux-0..1 on ibsim0 port 1" "$(cat d.log)"
t_is "the [ibsim0:1] section applies, [mlx5_0:1] does not: mode 0640" "$(stat -c '%n %a' mnt/* | tr '\n' ' ')" \
	"mnt/umad-mux-0 640 mnt/umad-mux-1 640 "
export UMAD_MUX_CONTROL=$W/ctl     # ctl without -s
out=$("$C" list); rc=$?
t_is "ctl list: exit 0" "$rc" 0
t_grep "ctl list: node 0, all classes" "^node 0  $W/mnt/umad-mux-0  up  files 0  privileged yes  classes all  protocol umad" "$out"
t_grep "ctl list: node 1 restricted to 0x04 by the config" "^node 1  .*classes 0x04 " "$out"
raw=$("$C" -r list)
t_grep "ctl -r list: raw counters record of every counter" "^counters 1 rx_packets 0 rx_delivered 0 .*tx_refused_policy 0" "$raw"

# a client holding node 0 with two agents, then PerfMgt round trips on node 1
"$T_BUILD/tests/tools/mux_vmclient" responder "$W/mnt/umad-mux-0" 0x0a 0x0b >resp.log 2>&1 &
rpid=$!
for _ in $(seq 100); do grep -q ready resp.log && break; sleep 0.05; done
abi=$("$T_BUILD/tests/tools/mux_abi" "$W/mnt/umad-mux-1" "$SIMFAB_LID_Hca2" 2>&1)
raw=$("$C" -r list)
t_grep "ctl list: the responder's file on node 0 with 2 agents, new header" \
	"^file [0-9]+ node 0 pid $rpid header new agents 2 queued 0 outstanding 0 sent 0 received 0 timeouts 0 " "$raw"
t_grep "ctl list: its agent for class 0x0a receives Get (0x01)" \
	"^agent [0-9]+\.0 qpn 1 class 0x0a version 1 rmpp 0 oui 0x000000 methods 0x01 outstanding 0$" "$raw"
t_grep "ctl list (readable): agent line" "^    agent 1: qpn 1 class 0x0b version 1 rmpp 0 methods 0x01 outstanding 0$" "$("$C" list)"
t_grep "ctl list: node 1 counted its PerfMgt sends and deliveries" "^counters 1 rx_packets 0 rx_delivered 2 .* tx_packets 2 " "$raw"
pol=$(grep -c "^not ok" <<<"$abi")
t_diag <<<"mux_abi on the restricted node 1: $pol probe(s) differ from the kernel (classes policy)"
kill -TERM "$rpid"; wait "$rpid" 2>/dev/null; rpid=""

# add-node / remove-node
out=$("$C" add-node); rc=$?
t_is "ctl add-node: first free slot" "$rc $out" "0 node 2 name umad-mux-2 path $W/mnt/umad-mux-2"
out=$("$C" add-node 5)
t_is "ctl add-node 5" "$out" "node 5 name umad-mux-5 path $W/mnt/umad-mux-5"
t_is "the new files appear, with the configured mode" "$(stat -c '%n %a' mnt/* | tr '\n' ' ')" \
	"mnt/umad-mux-0 640 mnt/umad-mux-1 640 mnt/umad-mux-2 640 mnt/umad-mux-5 640 "
t_grep "node 5 got the config's 'node 5' policy" "^node 5 .*classes 0x0a " "$("$C" list)"
out=$("$T_BUILD/tests/tools/mux_abi" "$W/mnt/umad-mux-2" "$SIMFAB_LID_Hca2" 2>&1)
t_is "a node added at runtime is usable: mux_abi passes on umad-mux-2" "$(grep -c '^not ok' <<<"$out") $(grep -c '^ok' <<<"$out")" "0 32"
t_is "ctl add-node on an existing node: exit 1, one line" "$(run "$C" add-node 5)" "1|umad-muxctl: add-node: node 5 exists (umad-mux-5)"
t_is "ctl remove-node 5" "$("$C" remove-node 5)" "node 5 removed"
t_is "its file is gone" "$(ls mnt | tr '\n' ' ')" "umad-mux-0 umad-mux-1 umad-mux-2 "
t_is "ctl remove-node of a missing node: exit 1" "$(run "$C" remove-node 5)" "1|umad-muxctl: remove-node: no node 5"
t_is "stats: nodes counts nodes in use" "$("$C" stats | sed -n 's/^nodes  *//p')" 3

# reload
sed -i 's/^mode-bits 0640/mode-bits 0660/; s/^node 1 classes 0x04 .*/node 1 classes 0x04,0x0a/; s/^nodes 2/nodes 4/' d.conf
out=$("$C" reload); rc=$?
t_is "ctl reload: exit 0" "$rc" 0
t_grep "ctl reload: one policy changed, new mode, node 3 added" \
	"policies changed: 1 node.nodes now mode 0660 owner 0:0.added node 3 \(umad-mux-3\).ok" "$(tr '\n' '.' <<<"$out")"
t_is "reload: modes applied (kernel attribute cache dropped)" "$(stat -c '%a' mnt/* | tr '\n' ' ')" "660 660 660 660 "
t_grep "reload: node 1 policy now 0x04,0x0a" "^node 1 .*classes 0x04,0x0a " "$("$C" list)"
cp d.conf good.conf
printf 'node 1 privileged maybe\n' >>d.conf
t_is "ctl reload of a bad config: exit 1, file:line" "$(run "$C" reload)" \
	"1|umad-muxctl: reload: $W/d.conf:10: node 1: bad privileged 'maybe'"
t_grep "a failed reload changed nothing" "^node 1 .*privileged yes  classes 0x04,0x0a " "$("$C" list)"
cp good.conf d.conf
sed -i 's/^mode-bits 0660/mode-bits 0600/' d.conf
kill -HUP "$dpid"
for _ in $(seq 50); do grep -q "SIGHUP: reload" d.log && break; sleep 0.05; done
t_grep "SIGHUP reloads (log line)" "SIGHUP: reload done: policies changed: 0 nodes;nodes now mode 0600" "$(cat d.log)"
t_is "SIGHUP: mode applied" "$(stat -c '%a' mnt/* | sort -u)" 600
t_is "daemon still running after reloads" "$(kill -0 "$dpid" && echo yes)" yes
kill -TERM "$dpid"; wait "$dpid"; rc=$?; dpid=""
t_is "SIGTERM after runtime nodes: exit 0, unmounted" "$rc $(grep -c " $W/mnt fuse" /proc/mounts)" "0 0"

# ---- make install / uninstall into a scratch prefix
R=$W/root
out=$(make -C "$T_ROOT" --no-print-directory BUILD="${BUILD:-build}" SANITIZE="${SANITIZE:-}" install PREFIX="$R/usr" SYSCONFDIR="$R/etc" 2>&1)
t_is "make install PREFIX=... SYSCONFDIR=...: exit 0" "$?" 0
want="etc/umad-mux/umad-mux.conf etc/umad-mux/umad-mux.conf.example usr/lib/systemd/system/umad-mux@.service \
usr/lib/udev/rules.d/92-umad-mux.rules usr/sbin/umad-mux usr/sbin/umad-mux-exec usr/sbin/umad-muxctl \
usr/share/man/man5/umad-mux.conf.5 usr/share/man/man8/umad-mux.8 usr/share/man/man8/umad-muxctl.8"
t_is "installed files" "$(cd "$R" && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ')" "$want "
U=$R/usr/lib/systemd/system/umad-mux@.service
t_grep "unit: ExecStart uses SBINDIR and SYSCONFDIR" \
	"^ExecStart=$R/usr/sbin/umad-mux --foreground --instance %I --config $R/etc/umad-mux/umad-mux.conf --control /run/umad-mux/%I/control$" "$(cat "$U")"
t_grep "unit: Type=notify" "^Type=notify$" "$(cat "$U")"
# systemd-analyze verify cannot take a unit file whose name has ':' (it
# fails on any such name), so the instance is checked as umad-mux@rxe0
if command -v systemd-analyze >/dev/null; then
	mkdir v && cp "$U" v/umad-mux@rxe0.service
	out=$(cd v && systemd-analyze verify --man=no ./umad-mux@rxe0.service 2>&1); rc=$?
	t_is "systemd-analyze verify umad-mux@rxe0.service: clean" "$rc|$out" "0|"
	out=$(systemd-analyze security --offline=true "$U" 2>&1 | tail -n 1)
	t_grep "systemd-analyze security: exposure OK or better" "Overall exposure level .*(OK|SAFE)" "$out"
else
	t_skip "systemd-analyze verify" "systemd-analyze missing"
	t_skip "systemd-analyze security" "systemd-analyze missing"
fi
for m in "$R"/usr/share/man/man*/*; do
	w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
	t_is "man page $(basename "$m") renders without warnings" "$w" ""
done
t_grep "umad-mux(8) documents every long option of --help" '^$' \
	"$("$D" --help | grep -oE -- '--[a-z-]+' | sort -u | while read -r o; do
		LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$R/usr/share/man/man8/umad-mux.8" 2>/dev/null | grep -q -- "$o" || echo "missing $o"; done)"
echo "# admin edit" >>"$R/etc/umad-mux/umad-mux.conf"
out=$(make -C "$T_ROOT" --no-print-directory install PREFIX="$R/usr" SYSCONFDIR="$R/etc" 2>&1)
t_grep "make install again keeps the admin's config" "# admin edit" "$(cat "$R/etc/umad-mux/umad-mux.conf")"
make -C "$T_ROOT" --no-print-directory uninstall PREFIX="$R/usr" SYSCONFDIR="$R/etc" >/dev/null 2>&1
t_is "make uninstall: only the edited config stays" "$(cd "$R" && find . -type f | sed 's|^\./||')" "etc/umad-mux/umad-mux.conf"
t_done
