# tests/lib.sh - TAP helpers shared by every shell suite (source it).
# Each check prints one TAP line: "ok - name" or "not ok - name # reason".
# tests/run.sh counts those lines across suites.
T_FAILS=0
t_ok()   { echo "ok - $1"; }
t_fail() { echo "not ok - $1${2:+ # $2}"; T_FAILS=$((T_FAILS + 1)); }
t_skip() { echo "ok - $1 # SKIP ${2:-}"; }
t_diag() { sed 's/^/# /'; }            # pipe text in: shown as TAP comments
# t_is NAME GOT WANT
t_is() {
	if [ "$2" = "$3" ]; then t_ok "$1"; else t_fail "$1" "got '$2', want '$3'"; fi
}
# t_run NAME CMD...: ok when CMD exits 0; its output is shown as comments on failure
t_run() {
	local name=$1 out rc; shift
	out=$("$@" 2>&1); rc=$?
	if [ $rc = 0 ]; then t_ok "$name"; else echo "$out" | tail -n 20 | t_diag; t_fail "$name" "exit $rc"; fi
	return $rc
}
# t_grep NAME REGEX TEXT: ok when TEXT matches the extended REGEX
t_grep() {
	if printf '%s\n' "$3" | grep -Eq -- "$2"; then t_ok "$1"
	else printf '%s\n' "$3" | tail -n 20 | t_diag; t_fail "$1" "no match for /$2/"; fi
}
t_done() { [ "$T_FAILS" = 0 ]; }
# repository root and the build directory the Makefile used
T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T_BUILD=$T_ROOT/${BUILD:-build}
# rxe_roce_gid [DEV]: "GID INDEX" of DEV's (default rxe0) port 1 first non-zero
# RoCE v2 GID (builtins only: sysfs reads are slow under TCG); empty if none
rxe_roce_gid() {
	local d=/sys/class/infiniband/${1:-rxe0}/ports/1 g i t v
	for g in "$d"/gids/*; do
		i=${g##*/}
		read -r t <"$d/gid_attrs/types/$i" 2>/dev/null || continue
		[ "$t" = "RoCE v2" ] || continue
		read -r v <"$g" || continue
		[ "$v" = 0000:0000:0000:0000:0000:0000:0000:0000 ] && continue
		echo "$v $i"
		return 0
	done
}
# rxe_umad DEV: the umad device name (umadM) of DEV's port 1; fails if none
rxe_umad() {
	local d dev port
	for d in /sys/class/infiniband_mad/umad*; do
		read -r dev <"$d/ibdev" 2>/dev/null && read -r port <"$d/port" 2>/dev/null || continue
		[ "$dev" = "$1" ] && [ "$port" = 1 ] && { echo "${d##*/}"; return 0; }
	done
	return 1
}
# t_ctl SOCKET COMMAND: the daemon's control-socket answer to COMMAND
# (`stats`, `list`, ...), through its closing "end" line
t_ctl() {
	python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"end\n"):
    d = s.recv(65536)
    if not d: break
    buf += d
print(buf.decode(), end="")
PY
}
# t_ctl_stat SOCKET KEY: one value of the daemon's control-socket `stats`
t_ctl_stat() {
	t_ctl "$1" stats | sed -n "s/^$2 //p"
}
