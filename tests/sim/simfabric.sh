#!/bin/bash
# simfabric.sh - a simulated InfiniBand fabric for tests: ibsim (topology
# net.1sw4hca: Switch1 + Hca1..Hca4) and OpenSM on Hca1, both under Debian's
# ibsim-utils / libumad2sim0 / opensm.  No kernel IB stack is needed.
#
#   simfabric.sh start            start ibsim + opensm; wait for SUBNET UP and
#                                 for every HCA port to be ACTIVE; write env.sh
#   simfabric.sh stop             stop clients of this fabric, opensm, ibsim
#                                 (TERM, KILL after a bound); remove leftovers
#   simfabric.sh status           pids, socket name, ibsim's attached clients
#   simfabric.sh cmd 'ibsim cmd'  ibsim console command, prints its output
#                                 ('Attached', 'Unlink "Hca3"', 'ReLink "Hca3"', 'X 3')
#   simfabric.sh restart          stop + start
#   simfabric.sh smrestart        restart OpenSM only, wait as in start
#   simfabric.sh run HOST cmd...  run cmd under umad2sim attached to node HOST
#                                 (cwd $SIMFAB_DIR/work: umad2sim writes ./sys-<pid>)
#   simfabric.sh env              print the path of env.sh
#   . "$SIMFAB_DIR/env.sh"        IBSIM_SOCKNAME, SIMFAB_*, per-node LIDs/GUIDs and
#                                 the shell function simfab_run HOST cmd...
#
# Knobs: SIMFAB_DIR   state dir (default ${TMPDIR:-/tmp}/umad-mux-sim-$UID);
#                     one fabric per dir
#        IBSIM_SOCKNAME  ibsim socket base name; default umxsim-<pid>-<random>,
#                     chosen at start and kept in $SIMFAB_DIR/sockname.  Two
#                     fabrics coexist with distinct SIMFAB_DIR (+ socket names)
#        SIMFAB_NET   topology (default: net.1sw4hca next to this script)
#        SIMFAB_SM_HOST  node running OpenSM (default Hca1)
#        SIMFAB_TIMEOUT  seconds to wait for SUBNET UP / ACTIVE (default 15)
#        SIMFAB_OSM_OPTS  extra opensm options (e.g. '-D 0x0b' for a debug log)
# Limits (see README.md): at most 10 umad2sim processes per fabric, OpenSM
# included; a process killed by SIGKILL keeps its ibsim slot.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
DIR=${SIMFAB_DIR:-${TMPDIR:-/tmp}/umad-mux-sim-$(id -u)}
NET=${SIMFAB_NET:-$HERE/net.1sw4hca}
SM_HOST=${SIMFAB_SM_HOST:-Hca1}
TIMEOUT=${SIMFAB_TIMEOUT:-15}
UMAD2SIM=${SIMFAB_PRELOAD:-/usr/lib/x86_64-linux-gnu/umad2sim/libumad2sim.so}
WORK=$DIR/work

ms() { date +%s%3N; }
say() { echo "simfabric: $*" >&2; }

# running = exists and is not a zombie.  kill -0 succeeds on zombies, and a
# reparented ibsim may stay Z for a while if the reaper is lazy.
alive() {
	local st
	[ -n "${1:-}" ] || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ]
}
pidof_file() { cat "$DIR/$1.pid" 2>/dev/null; }

# the socket name: the running fabric's (state file) wins over the environment
sockname() {
	if [ -s "$DIR/sockname" ]; then cat "$DIR/sockname"
	else echo "${IBSIM_SOCKNAME:-}"; fi
}
ctl_listening() { grep -qE "@$1:ctl(@|\$)" /proc/net/unix; }

# stop_pid PID [TENTHS]: TERM, wait up to TENTHS/10 s, then KILL
stop_pid() {
	local pid=$1 n=${2:-40} i
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < n; i++)); do alive "$pid" || return 0; sleep 0.1; done
	say "pid $pid ($(cat /proc/$pid/comm 2>/dev/null)) ignored SIGTERM, sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null
	for ((i = 0; i < 30; i++)); do alive "$pid" || return 0; sleep 0.1; done
	say "pid $pid survived SIGKILL"
	return 1
}

# node ids of the topology: nodes TYPE-REGEX
nodes() { sed -nE "s/^($1)[[:space:]]+[0-9]+[[:space:]]+\"([^\"]+)\".*/\2/p" "$NET"; }

# processes attached (or about to attach) to this fabric other than opensm:
# umad2sim in LD_PRELOAD and our socket name in the environment
fabric_clients() {
	local sock=$1 f p
	for f in $(grep -lzx "IBSIM_SOCKNAME=$sock" /proc/[0-9]*/environ 2>/dev/null); do
		p=${f#/proc/}
		p=${p%/environ}
		case " $$ $PPID $(pidof_file opensm) $(pidof_file ibsim) " in *" $p "*) continue ;; esac
		grep -qz '^LD_PRELOAD=.*libumad2sim' "$f" 2>/dev/null && alive "$p" && echo "$p"
	done
}

# run_sim HOST CMD...: CMD under umad2sim at HOST (cwd $WORK), in this process
run_sim() {
	local host=$1 sock
	shift
	sock=$(sockname)
	[ -n "$sock" ] || { say "no fabric in $DIR (start it first)"; return 1; }
	mkdir -p "$WORK"
	# a relative program path still means the caller's cwd
	case $1 in */*) [ "${1#/}" = "$1" ] && set -- "$PWD/$1" "${@:2}" ;; esac
	export SIMFAB_CALLER_CWD=$PWD
	cd "$WORK" || return 1
	# ASan insists on being first in the link order; umad2sim is preloaded,
	# and its read() overreads its own buffer (asan.supp)
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:suppressions=$HERE/asan.supp
	SIM_HOST=$host IBSIM_SOCKNAME=$sock LD_PRELOAD=$UMAD2SIM${LD_PRELOAD:+:$LD_PRELOAD} exec "$@"
}

# wait_active: every HCA port ACTIVE with a LID and the SM's LID, as seen by
# ibstat under umad2sim on each node (a fresh process sees ibsim's current
# PortInfo).  Writes $DIR/nodes: "id lid portguid smlid" per HCA.
wait_active() {
	local deadline=$(($(ms) + TIMEOUT * 1000)) h out ok lid guid sm tries=0
	local -a hcas pids
	mapfile -t hcas < <(nodes 'Hca|Ca')
	while :; do
		tries=$((tries + 1))
		pids=()
		for h in "${hcas[@]}"; do
			(run_sim "$h" ibstat ibsim0 1 >"$DIR/ibstat.$h" 2>&1) &
			pids+=($!)
		done
		wait "${pids[@]}"	# not a bare wait: ibsim/opensm are children too
		ok=1
		: >"$DIR/nodes.tmp"
		for h in "${hcas[@]}"; do
			out=$(cat "$DIR/ibstat.$h")
			lid=$(sed -n 's/^[[:space:]]*Base lid: *//p' <<<"$out")
			sm=$(sed -n 's/^[[:space:]]*SM lid: *//p' <<<"$out")
			guid=$(sed -n 's/^[[:space:]]*Port GUID: *//p' <<<"$out")
			if grep -q 'State: Active' <<<"$out" && [ "${lid:-0}" != 0 ] && [ "${sm:-0}" != 0 ]; then
				echo "$h $lid $guid $sm" >>"$DIR/nodes.tmp"
			else
				ok=0
			fi
		done
		rm -f "$DIR"/ibstat.*
		if [ $ok = 1 ]; then
			mv "$DIR/nodes.tmp" "$DIR/nodes"
			[ $tries = 1 ] || say "ports ACTIVE after $tries ibstat rounds"
			return 0
		fi
		[ "$(ms)" -lt $deadline ] || { say "HCA ports not ACTIVE after ${TIMEOUT}s:"; cat "$DIR/nodes.tmp" >&2; return 1; }
		sleep 0.1
	done
}

start_sm() {
	local i pid deadline
	rm -f "$DIR/osm.log"
	# -d2: flush the log after each line (else "SUBNET UP" stays buffered);
	# -F /dev/null: no system config; OSM_*_DIR: keep guid2lid etc. out of
	# /var; cwd $DIR: umad2sim writes ./sys-<pid>; setsid: immune to ^C of
	# the caller's terminal (we stop it by PID).
	(cd "$DIR" && SIM_HOST=$SM_HOST LD_PRELOAD=$UMAD2SIM IBSIM_SOCKNAME=$SOCK \
		OSM_CACHE_DIR="$DIR/osmcache" OSM_TMP_DIR="$DIR/osmcache" \
		exec setsid opensm -d2 -F /dev/null -f "$DIR/osm.log" ${SIMFAB_OSM_OPTS:-} </dev/null >"$DIR/opensm.out" 2>&1) &
	pid=$!
	echo $pid >"$DIR/opensm.pid"
	deadline=$(($(ms) + TIMEOUT * 1000))
	until grep -q "SUBNET UP" "$DIR/osm.log" 2>/dev/null; do
		alive $pid || { say "opensm died:"; cat "$DIR/opensm.out" >&2; return 1; }
		[ "$(ms)" -lt $deadline ] || { say "no SUBNET UP after ${TIMEOUT}s"; return 1; }
		sleep 0.02
	done
}

write_env() {
	local h lid guid sm
	{
		echo "# source me: clients of the simulated fabric in $DIR"
		echo "export SIMFAB_DIR='$DIR' SIMFAB_WORK='$WORK' SIMFAB='$SELF'"
		echo "export IBSIM_SOCKNAME='$SOCK' SIMFAB_PRELOAD='$UMAD2SIM' SIMFAB_NET='$NET' SIMFAB_SUPP='$HERE/asan.supp'"
		echo "export SIMFAB_SM_HOST='$SM_HOST'"
		while read -r h lid guid sm; do
			echo "export SIMFAB_LID_$h=$lid SIMFAB_PORTGUID_$h=$guid"
			[ "$h" = "$SM_HOST" ] && echo "export SIMFAB_SM_LID=$sm"
		done <"$DIR/nodes"
		cat <<'EOF'
# LD_PRELOAD is deliberately NOT exported: programs that must reach the real
# (or FUSE/CUSE) umad files, e.g. the clients of umad-mux, must not run under
# umad2sim.  Run a program as a node of the fabric with:
#   simfab_run Hca2 cmd args...      (or: "$SIMFAB" run Hca2 cmd args...)
# It runs in $SIMFAB_WORK (umad2sim writes ./sys-<pid> into the cwd).
# Receiving unsolicited GSI on a node needs SIM_SET_ISSM=1 (one per node;
# register agents first, see README.md "IsSM").
simfab_run() {
	local h=$1
	shift
	case $1 in */*) [ "${1#/}" = "$1" ] && set -- "$PWD/$1" "${@:2}" ;; esac
	(
		export SIMFAB_CALLER_CWD=$PWD
		cd "$SIMFAB_WORK" || exit 1
		export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:suppressions=$SIMFAB_SUPP
		SIM_HOST=$h LD_PRELOAD=$SIMFAB_PRELOAD${LD_PRELOAD:+:$LD_PRELOAD} exec "$@"
	)
}
EOF
	} >"$DIR/env.sh"
}

do_start() {
	local t0 t1 t2 t3 pid b
	t0=$(ms)
	if alive "$(pidof_file ibsim)" || alive "$(pidof_file opensm)"; then
		say "already running in $DIR (stop it first)"; return 1
	fi
	for b in ibsim opensm ibstat; do
		command -v $b >/dev/null || { say "missing $b (run tests/deps.sh)"; return 1; }
	done
	[ -r "$UMAD2SIM" ] || { say "missing $UMAD2SIM (libumad2sim0)"; return 1; }
	[ -r "$NET" ] || { say "missing topology $NET"; return 1; }
	mkdir -p "$DIR" || return 1
	cleanup_files
	SOCK=${IBSIM_SOCKNAME:-umxsim-$$-$RANDOM}
	if ctl_listening "$SOCK"; then
		say "another ibsim already owns socket @$SOCK:ctl"; return 1
	fi
	echo "$SOCK" >"$DIR/sockname"
	mkdir -p "$DIR/osmcache" "$WORK"
	mkfifo "$DIR/ibsim.ctl" || return 1

	# ibsim -s: start the net at once.  Its console reads stdin and exits at
	# EOF, so stdin is a FIFO opened read-write (<>): never EOF, and `cmd`
	# writes console commands into it.  setsid: own session.
	(cd "$DIR" && IBSIM_SOCKNAME=$SOCK exec setsid ibsim -s "$NET" <>"$DIR/ibsim.ctl" >"$DIR/ibsim.log" 2>&1) &
	pid=$!
	echo $pid >"$DIR/ibsim.pid"
	local deadline=$(($(ms) + TIMEOUT * 1000))
	until ctl_listening "$SOCK"; do
		alive $pid || { say "ibsim died:"; cat "$DIR/ibsim.log" >&2; do_stop >/dev/null; return 1; }
		[ "$(ms)" -lt $deadline ] || { say "ibsim not listening after ${TIMEOUT}s"; do_stop >/dev/null; return 1; }
		sleep 0.02
	done
	t1=$(ms)
	start_sm || { do_stop >/dev/null; return 1; }
	t2=$(ms)
	wait_active || { do_stop >/dev/null; return 1; }
	t3=$(ms)
	write_env
	echo "simfabric: up in $((t3 - t0)) ms (ibsim pid $(pidof_file ibsim) $((t1 - t0)) ms," \
		"opensm pid $(pidof_file opensm) SUBNET UP +$((t2 - t1)) ms, ports ACTIVE +$((t3 - t2)) ms);" \
		"socket $SOCK, env $DIR/env.sh"
}

cleanup_files() {
	rm -f "$DIR/opensm.pid" "$DIR/ibsim.pid" "$DIR/ibsim.ctl" "$DIR/env.sh" "$DIR/sockname" \
		"$DIR/nodes" "$DIR/nodes.tmp" "$DIR"/ibstat.*
	# fake sysfs trees of umad2sim processes that did not exit normally
	rm -rf "$DIR"/sys-[0-9]* "$WORK"/sys-[0-9]*
}

do_stop() {
	local t0 opid ipid sock p n=0 rc=0
	t0=$(ms)
	[ -d "$DIR" ] || { echo "simfabric: nothing in $DIR"; return 0; }
	SOCK=$(sockname)
	opid=$(pidof_file opensm)
	ipid=$(pidof_file ibsim)
	# 1. clients still attached (e.g. a daemon a test left running); TERM lets
	#    umad2sim's atexit detach from ibsim and remove its sys-<pid>
	if [ -n "$SOCK" ]; then
		for p in $(fabric_clients "$SOCK"); do
			say "stopping leftover client pid $p ($(cat /proc/$p/comm 2>/dev/null))"
			stop_pid "$p" 20 || rc=1
			n=$((n + 1))
		done
	fi
	# 2. opensm (normal exit runs umad2sim's atexit: ibsim detach, rm sys-<pid>)
	stop_pid "$opid" 40 || rc=1
	# 3. ibsim: console Quit, then TERM/KILL.  The FIFO is held open by ibsim
	#    itself, so this write cannot block once ibsim is alive.
	if alive "$ipid"; then
		timeout 1 sh -c 'echo Quit >"$1"' sh "$DIR/ibsim.ctl" 2>/dev/null
		for ((p = 0; p < 10; p++)); do alive "$ipid" || break; sleep 0.05; done
		stop_pid "$ipid" 20 || rc=1
	fi
	cleanup_files
	echo "simfabric: stopped in $(($(ms) - t0)) ms$([ $n = 0 ] || echo ", $n leftover clients")"
	return $rc
}

# status: exit 0 only if both ibsim and opensm run
do_status() {
	local p sock rc=0
	sock=$(sockname)
	echo "dir $DIR, socket ${sock:-none}"
	for p in ibsim opensm; do
		if alive "$(pidof_file $p)"; then echo "$p: running pid $(pidof_file $p)"
		else echo "$p: not running"; rc=1; fi
	done
	if alive "$(pidof_file ibsim)"; then
		do_cmd Attached | grep -o "Client [0-9].*" || echo "(no ibsim clients)"
		[ -r "$DIR/nodes" ] && sed 's/^/node lid portguid smlid: /' "$DIR/nodes"
	fi
	return $rc
}

# do_cmd 'console command': write it to ibsim's FIFO, print what it printed
do_cmd() {
	local n i m
	alive "$(pidof_file ibsim)" || { say "ibsim not running"; return 1; }
	n=$(wc -l <"$DIR/ibsim.log")
	echo "$*" >"$DIR/ibsim.ctl"
	# ibsim prints the console prompt "sim> " after a command's output
	for ((i = 0; i < 20; i++)); do
		sleep 0.05
		m=$(wc -l <"$DIR/ibsim.log")
		[ "$m" -gt "$n" ] && [ "$i" -ge 2 ] && break
	done
	tail -n +$((n + 1)) "$DIR/ibsim.log"
}

case "${1:-}" in
start) do_start ;;
stop) do_stop ;;
restart) do_stop && do_start ;;
smrestart)
	SOCK=$(sockname)
	alive "$(pidof_file ibsim)" || { say "ibsim not running"; exit 1; }
	t0=$(ms)
	stop_pid "$(pidof_file opensm)" 40 && start_sm && wait_active && write_env &&
		echo "simfabric: opensm restarted, ports ACTIVE in $(($(ms) - t0)) ms" ;;
status) do_status ;;
cmd) shift; do_cmd "$*" ;;
run) shift; [ $# -ge 2 ] || { say "usage: run HOST cmd..."; exit 2; }
	run_sim "$@" ;;
env) [ -r "$DIR/env.sh" ] && echo "$DIR/env.sh" ;;
*) sed -n '2,/^set -u/p' "$SELF" | sed '$d'; exit 2 ;;
esac
