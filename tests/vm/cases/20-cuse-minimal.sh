#!/bin/bash
# 20-cuse-minimal: CUSE in the real kernel with a minimal single-threaded libfuse3
# server (tests/vm/mini_cuse.c): the node appears, read/write/poll/ioctl/EAGAIN/
# EINTR behave as a umad client needs (tests/vm/mini_cuse_client.c), and the node
# goes away when the server stops.
. "$(dirname "$0")/../../lib.sh"
srv=$T_BUILD/tests/vm/mini_cuse
cli=$T_BUILD/tests/vm/mini_cuse_client
name=umx-mini-$$

[ -c /dev/cuse ] || { t_fail "cuse: /dev/cuse exists" "modprobe cuse?"; exit 1; }
for b in "$srv" "$cli"; do
	[ -x "$b" ] || { t_fail "cuse: ${b##*/} is built" "$b missing (make all)"; exit 1; }
done

log=$(mktemp)
"$srv" "$name" 2>"$log" &
spid=$!
for _ in $(seq 100); do [ -c "/dev/$name" ] && break; sleep 0.05; done
if [ -c "/dev/$name" ] && [ -e "/sys/class/cuse/$name" ]; then
	t_ok "cuse: the server creates /dev/$name (char device, /sys/class/cuse/$name)"
else
	t_fail "cuse: the server creates /dev/$name" "no node after 5 s"
	t_diag <"$log"; kill "$spid" 2>/dev/null; exit 1
fi

out=$("$cli" "/dev/$name" 2>&1); rc=$?
printf '%s\n' "$out"
if [ $rc != 0 ] && ! printf '%s\n' "$out" | grep -q '^not ok'; then
	t_fail "cuse: mini_cuse_client" "exited $rc"
fi

kill -TERM "$spid"
wait "$spid"; src=$?
t_is "cuse: the server exits cleanly on SIGTERM" "$src" 0
for _ in $(seq 40); do [ -e "/dev/$name" ] || break; sleep 0.05; done
t_is "cuse: /dev/$name is gone after the server exits" "$([ -e "/dev/$name" ] && echo present || echo gone)" gone
[ -s "$log" ] && t_diag <"$log"
rm -f "$log"
t_done
