#!/bin/bash
# 60-rdmacm-proto.sh - the rdmacm-mux protocol (QEMU pvrdma) of umad-mux,
# spoken byte for byte by tests/tools/rdmacm_client (its own offsets), on the
# simulated fabric: the daemon runs under umad2sim on Hca2 in FUSE mode with
# node 0 in umad mode and node 1 in rdmacm mode (`answers all`), plus the unix socket (-s).
#   * layout: message size and every field offset = QEMU's declaration
#     (enum/union ibv_gid/int/struct ib_user_mad/RDMA_MAX_PRIVATE_DATA) =
#     cuse/rdmacm_proto.h; the daemon's encoder puts fields there
#   * on the socket and on the rdmacm node: REG (OK), duplicate REG (EEXIST
#     same client, EACCES other client), UNREG (OK, ENOTFOUND, EACCES),
#     unknown op code (EINVAL), REG of the zero GID / of a GID not in the
#     port's table (EINVAL), MADs with bad umad_len / not CM (EINVAL), from an
#     unregistered GID (ENOTFOUND), a CM MAD (OK); socket: a non-request
#     closes the connection (as rdmacm-mux), split messages are reassembled;
#     node: 100/361-byte writes and non-requests fail with EINVAL, small reads
#     EINVAL, poll and O_NONBLOCK; close unregisters; the daemon survives
#   * node 1 with the default `answers none` (QEMU's -chardev pipe): nothing
#     answered, failures logged and counted (rdmacm_errors_unanswered)
#   * a umad-mode node bound to the GID (gid-index 0) makes REG answer EACCES
#   * control socket: cm_ids printed; SIGTERM: exit 0, socket removed
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../lib.sh"
: "${SIMFAB_DIR:?run through tests/sim/run.sh}"
. "$SIMFAB_DIR/env.sh"
C=$T_BUILD/tests/tools/rdmacm_client
W=$(mktemp -d "$SIMFAB_DIR/rdmacm.XXXXXX")
M=$W/mnt
mkdir -p "$M"
dpid="" hpid=""
cleanup() {
	[ -n "$hpid" ] && kill -TERM "$hpid" 2>/dev/null && wait "$hpid" 2>/dev/null
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	grep -q " $M fuse" /proc/mounts && fusermount3 -u "$M" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
ms() { date +%s%3N; }

# ---- layout (no daemon needed)
out=$("$C" layout 2>&1)
echo "$out"
nl=$(grep -c '^ok' <<<"$out")

# Hca2's port GID: fe80::<port GUID>
g=${SIMFAB_PORTGUID_Hca2#0x}
g=$(printf '%016x' "0x$g")
GID="fe80::${g:0:4}:${g:4:4}:${g:8:4}:${g:12:4}"

start() {   # start ARGS...: the daemon on Hca2, FUSE files in $M
	t0=$(ms)
	"$SIMFAB" run Hca2 "$T_BUILD/umad-mux" -f --mode fuse --fuse-dir "$M" -n 2 \
		--node 1:protocol=rdmacm -s "$W/rdmacm.sock" --control "$W/ctl" "$@" >"$W/d.log" 2>&1 &
	dpid=$!
	for _ in $(seq 100); do grep -q "ready:" "$W/d.log" && break; sleep 0.05; done
}
stop() {
	kill -TERM "$dpid"; wait "$dpid"; rc=$?; dpid=""
}
stats() { t_ctl "$W/ctl" stats 2>&1; }

start --node 1:answers=all
t_grep "daemon ready with node 1 in rdmacm mode and the socket ($(( $(ms) - t0 )) ms)" \
	"rdmacm-mux protocol on $W/rdmacm.sock" "$(cat "$W/d.log")"
t_is "socket is a unix socket" "$(stat -c %F "$W/rdmacm.sock" 2>&1)" "socket"

# umad2sim crashes when a MAD of a class arrives that no agent of the
# process holds (e.g. ibsim's answer to our CM MAD after its client left):
# a CM agent stays registered on node 0 (umad mode) meanwhile
"$C" hold "$M/umad-mux-0" >"$W/hold.log" 2>&1 &
hpid=$!
for _ in $(seq 100); do grep -q holding "$W/hold.log" && break; sleep 0.05; done
t0=$(ms)
out=$("$C" proto "$W/rdmacm.sock" "$GID" "$SIMFAB_LID_Hca3" 2>&1)
echo "$out" | sed 's/^\(not \)\{0,1\}ok - /&rdmacm_client: /'
t_diag <<<"socket checks: $(grep -c '^ok' <<<"$out") ok in $(( $(ms) - t0 )) ms (GID $GID)"
t0=$(ms)
out=$("$C" proto "$M/umad-mux-1" "$GID" "$SIMFAB_LID_Hca3" 2>&1)
echo "$out" | sed 's/^\(not \)\{0,1\}ok - /&rdmacm_client: /'
t_diag <<<"node checks: $(grep -c '^ok' <<<"$out") ok in $(( $(ms) - t0 )) ms"

# one client on the socket and one on the node: the GID is one client's at a time
kill -TERM "$hpid"; wait "$hpid"; hpid=""
st=$(stats)
val() { sed -n "s/^$1 //p" <<<"$st"; }
t_grep "control: stats print cm_ids" '^cm_ids [0-9]+$' "$st"
t_is "control: no files left after the clients closed (files $(val files))" "$(val files)" 0
t_grep "daemon still running after the malformed messages" '^ok$' "$(kill -0 "$dpid" 2>/dev/null && echo ok)"
stop
t_is "SIGTERM: daemon exits 0" "$rc" 0
t_is "SIGTERM: socket removed" "$(ls "$W/rdmacm.sock" 2>&1 | grep -c 'No such')" 1

# ---- node 1 with the default `answers none` (QEMU's -chardev pipe): no
# request is answered; failures are logged and counted instead
start
lst=$(t_ctl "$W/ctl" list 2>&1)
t_grep "control list: node 1 protocol rdmacm answers none (the default)" \
	'^node 1 .* protocol rdmacm answers none$' "$lst"
out=$(python3 - "$M/umad-mux-1" "$GID" <<'EOF2'
import os, select, struct, sys, ipaddress
gid = ipaddress.IPv6Address(sys.argv[2]).packed
def msg(op, g, mad=False):
    m = bytearray(360); struct.pack_into("<II", m, 0, 0, op); m[8:24] = g
    if mad:
        struct.pack_into("<i", m, 32, 256); m[100:104] = bytes([1, 7, 2, 3])
    return bytes(m)
a = os.open(sys.argv[1], os.O_RDWR); b = os.open(sys.argv[1], os.O_RDWR)
w = [os.write(a, msg(0, gid)), os.write(b, msg(0, gid)),           # REG; REG of a's GID: EACCES
     os.write(b, msg(2, bytes(15) + b"\x01", True)),                # MAD from an unknown GID: ENOTFOUND
     os.write(a, msg(1, gid))]                                       # UNREG: OK
p = select.poll(); p.register(a, select.POLLIN); p.register(b, select.POLLIN)
ev = p.poll(500)
print("writes", *w, "readable", len(ev))
EOF2
)
t_is "node, answers none: 4 requests written whole (REG, REG of a taken GID, MAD of an unknown GID, UNREG), nothing to read within 0.5 s" \
	"$out" "writes 360 360 360 360 readable 0"
st=$(stats)
val() { sed -n "s/^$1 //p" <<<"$st"; }
t_is "control: 4 answers suppressed, 2 of them errors" \
	"$(val rdmacm_answers_suppressed) $(val rdmacm_errors_unanswered)" "4 2"
t_grep "daemon log names the unanswered REG failure (EACCES = 3)" \
	'REG failed with err_code 3 \(not answered: answers none\)' "$(cat "$W/d.log")"
stop
t_is "SIGTERM: daemon exits 0" "$rc" 0

# ---- a umad node bound to the GID owns it: REG is EACCES
start --node 0:gid-index=0
out=$(python3 - "$W/rdmacm.sock" "$GID" <<'EOF'
import socket, struct, sys, ipaddress
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
gid = ipaddress.IPv6Address(sys.argv[2]).packed
m = bytearray(360); struct.pack_into("<II", m, 0, 0, 0); m[8:24] = gid
s.sendall(m); r = b""
while len(r) < 360:
    d = s.recv(360 - len(r))
    if not d: break
    r += d
print(struct.unpack_from("<IIi", r, 0)[0], struct.unpack_from("<I", r, 4)[0], struct.unpack_from("<i", r, 24)[0])
EOF
)
t_is "REG of the GID of a umad node bound to gid-index 0 -> RESP REG EACCES (3) (python, struct offsets)" "$out" "1 0 3"
stop
t_is "SIGTERM: daemon exits 0" "$rc" 0
[ "$nl" -gt 30 ] || t_fail "layout checks ran" "$nl ok"
t_done
