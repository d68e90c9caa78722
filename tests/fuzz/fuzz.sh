#!/bin/sh
# tests/fuzz/fuzz.sh SECONDS TARGET... - run each libFuzzer target for a
# bounded time on its seed corpus and print one TAP line per target:
#   ok - fuzz <target>: N execs, 0 crashes
# Exits non-zero if any target crashed (reproducer: $FUZZ_ARTIFACTS/<target>-crash-*).
# Environment: FUZZ_BUILD (build-fuzz), FUZZ_ARTIFACTS, FUZZ_JOBS (targets run
# in parallel, default 1).
set -u
secs=$1; shift
B=${FUZZ_BUILD:-build-fuzz}
A=${FUZZ_ARTIFACTS:-$B/crashes}
jobs=${FUZZ_JOBS:-1}
mkdir -p "$A" "$B/logs"

max_len() {
	case $1 in
	fuzz_ioctl) echo 2048 ;;
	*) echo 4096 ;;
	esac
}

run_one() {
	t=$1
	seeds=tests/fuzz/corpus/$t
	work=$B/corpus/$t
	mkdir -p "$work" "$seeds"
	"$B/$t" -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$A/$t-" \
		"$work" "$seeds" >"$B/logs/$t.log" 2>&1
	echo $? >"$B/logs/$t.rc"
}

i=0
for t in "$@"; do
	run_one "$t" &
	i=$((i + 1))
	[ $((i % jobs)) = 0 ] && wait
done
wait

rc=0
for t in "$@"; do
	log=$B/logs/$t.log
	r=$(cat "$B/logs/$t.rc" 2>/dev/null || echo 99)
	n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$n" ] || n=$(grep -Eo '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
	[ -n "$n" ] || n=0
	if [ "$r" = 0 ]; then
		echo "ok - fuzz $t: $n execs, 0 crashes"
	else
		grep -E 'ERROR:|invariant|SUMMARY|Test unit written|^ *#[0-9]+ 0x.* in .*(core|tests/fuzz)/' \
			"$log" | head -n 20 | sed 's/^/# /'
		echo "not ok - fuzz $t: $n execs, crash (exit $r, log $log)"
		rc=1
	fi
done
exit $rc
