#!/bin/bash
# tests/bench/report.sh RAW OUTDIR - turn run.sh's raw lines into
# OUTDIR/results.txt (printed too), OUTDIR/results.csv and OUTDIR/bench.png.
# Round-trip figures are medians over the repetitions of one run; every
# mux/direct ratio compares medians of the same run.
set -u
RAW=$1 OUT=$2
export LC_ALL=C
[ -s "$RAW" ] || { echo "report: no results in $RAW" >&2; exit 1; }

# ---- medians of the round-trip measurements: one line per section/bed/path/clients
#   section bed path clients reps rt_per_s mads_per_s p50_us p99_us lost truncated
awk '
function val(k,   i, n, f) {
	n = split($0, f, " ")
	for (i = 1; i <= n; i++) if (index(f[i], k "=") == 1) return substr(f[i], length(k) + 2)
	return ""
}
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	if (n == 0) return ""
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
/section=(rt|pair) / {
	k = val("section") " " val("bed") " " val("path") " " val("clients")
	if (!(k in reps)) order[++nk] = k
	reps[k]++
	rt[k] = rt[k] " " val("rt_per_s"); p50[k] = p50[k] " " val("p50_us"); p99[k] = p99[k] " " val("p99_us")
	lost[k] += val("lost") + val("errors"); tr[k] += val("truncated")
}
END {
	for (i = 1; i <= nk; i++) {
		k = order[i]; r = median(rt[k])
		printf "%s %d %.0f %.0f %.1f %.1f %d %d\n", k, reps[k], r, 2 * r, median(p50[k]), median(p99[k]), lost[k], tr[k]
	}
}' "$RAW" >"$OUT/medians.txt"

# m BED PATH CLIENTS FIELD [SECTION]: a median (FIELD: reps rt mads p50 p99
# lost trunc; SECTION rt (separate runs, default) or pair (paired runs))
m() {
	awk -v b="$1" -v p="$2" -v c="$3" -v f="$4" -v s="${5:-rt}" '
	$1 == s && $2 == b && $3 == p && $4 == c {
		i = f == "reps" ? 5 : f == "rt" ? 6 : f == "mads" ? 7 : f == "p50" ? 8 : f == "p99" ? 9 : f == "lost" ? 10 : 11
		print $i; exit }' "$OUT/medians.txt"
}
# r SECTION BED CLIENTS KEY [PATH]: a value from the first matching raw line
r() {
	awk -v s="$1" -v b="$2" -v c="$3" -v k="$4" -v p="${5:-}" '
	function val(key,   i, n, f) {
		n = split($0, f, " ")
		for (i = 1; i <= n; i++) if (index(f[i], key "=") == 1) return substr(f[i], length(key) + 2)
		return ""
	}
	val("section") == s && val("bed") == b && val("clients") == c && (p == "" || val("path") == p) &&
	(p != "" || val("label") !~ /after/) { print val(k); exit }' "$RAW"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
fmt() { [ -n "$1" ] && echo "$1" || echo "-"; }
kib_per_file() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (a == "" || b == "") print "-"; else printf "%.2f", (b - a) / n }'; }

# ---- results.csv (long form) ------------------------------------------------
{
	echo "section,bed,path,clients,metric,value"
	while read -r sec bed path c reps rt mads p50 p99 lost tr; do
		for kvp in "reps=$reps" "rt_per_s=$rt" "mads_per_s=$mads" "p50_us=$p50" "p99_us=$p99" "lost=$lost" "truncated=$tr"; do
			echo "$sec,$bed,$path,$c,${kvp%%=*},${kvp#*=}"
		done
	done <"$OUT/medians.txt"
	grep -v 'section=rt \|section=pair \|section=note' "$RAW" | awk '
	{
		delete f; n = split($0, a, " ")
		for (i = 1; i <= n; i++) { e = index(a[i], "="); if (e) f[substr(a[i], 1, e - 1)] = substr(a[i], e + 1) }
		path = ("path" in f) ? f["path"] : ""
		sec = f["section"]; if (("label" in f) && f["label"] ~ /after/) sec = sec "_after_close"
		for (i = 1; i <= n; i++) {
			e = index(a[i], "="); if (!e) continue; k = substr(a[i], 1, e - 1)
			if (k == "section" || k == "bed" || k == "path" || k == "clients" || k == "label" || k == "files") continue
			printf "%s,%s,%s,%s,%s,%s\n", sec, f["bed"], path, f["clients"], k, f[k]
		}
	}'
} >"$OUT/results.csv"

# ---- results.txt ------------------------------------------------------------
rev=$(git -C "$(dirname "$0")" describe --always --dirty 2>/dev/null || echo "?")
{
	echo "umad-mux benchmark (make bench), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $rev"
	echo "host: $(nproc) CPUs, $(uname -r), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "Round trips: PerfMgt Get(PortCounters) -> GetResp, one outstanding request per client,"
	echo "each client its own process and open file; medians of the run's repetitions."
	echo "  sim = simulated fabric (ibsim answers; the daemon under umad2sim; mux clients on FUSE-mode files)"
	echo "  vm  = Debian 6.1 kernel under QEMU TCG, rxe (the kernel's MAD layer answers; mux clients on a CUSE node)"
	echo
	printf '%-4s %7s | %9s %9s %9s | %9s %9s %9s | %-22s\n' bed clients "direct/s" "p50 us" "p99 us" "mux/s" "p50 us" "p99 us" "mux/direct RT/s p50 p99"
	printf -- '-%.0s' $(seq 112); echo
	for bed in sim vm; do
		for c in 1 8 64; do
			dr=$(m "$bed" direct "$c" rt) mr=$(m "$bed" mux "$c" rt)
			[ -z "$dr$mr" ] && continue
			d50=$(m "$bed" direct "$c" p50) d99=$(m "$bed" direct "$c" p99)
			m50=$(m "$bed" mux "$c" p50) m99=$(m "$bed" mux "$c" p99)
			printf '%-4s %7s | %9s %9s %9s | %9s %9s %9s | %5s %5s %5s\n' "$bed" "$c" "$(fmt "$dr")" "$(fmt "$d50")" \
				"$(fmt "$d99")" "$(fmt "$mr")" "$(fmt "$m50")" "$(fmt "$m99")" "$(ratio "$mr" "$dr")" \
				"$(ratio "$m50" "$d50")" "$(ratio "$m99" "$d99")"
		done
	done
	if [ -z "$(m sim direct 64 rt)" ] && [ -n "$(m sim mux 64 rt)" ]; then
		echo "  sim direct with 64 clients: not possible (ibsim serves at most 10 umad2sim processes, OpenSM included)"
	fi
	awk '$10 > 0 || $11 > 0 { printf "  note: %s %s %s %s clients: %d lost/errors, %d repetitions cut by the deadline\n", $1, $2, $3, $4, $10, $11 }' "$OUT/medians.txt"
	echo
	echo "Paired latency: each client alternates requests on the port itself and through the mux"
	echo "(A B B A ...), so both paths meet the same moments of machine noise; medians of the repetitions."
	printf '%-4s %7s | %9s %9s | %9s %9s | %-12s\n' bed clients "direct p50" "p99" "mux p50" "p99" "mux/direct p50 p99"
	printf -- '-%.0s' $(seq 80); echo
	for bed in sim vm; do
		for c in 1 8 64; do
			d50=$(m "$bed" direct "$c" p50 pair) m50=$(m "$bed" mux "$c" p50 pair)
			[ -z "$d50$m50" ] && continue
			d99=$(m "$bed" direct "$c" p99 pair) m99=$(m "$bed" mux "$c" p99 pair)
			printf '%-4s %7s | %10s %9s | %9s %9s | %5s %5s\n' "$bed" "$c" "$(fmt "$d50")" "$(fmt "$d99")" \
				"$(fmt "$m50")" "$(fmt "$m99")" "$(ratio "$m50" "$d50")" "$(ratio "$m99" "$d99")"
		done
	done
	echo
	best() { awk -v b="$1" -v p="$2" '$1 == "rt" && $2 == b && $3 == p && $7 > m { m = $7; c = $4 } END { if (m) printf "%.0f MADs/s (%s clients)", m, c; else printf "-" }' "$OUT/medians.txt"; }
	echo "Aggregate MADs/s (2 MADs per round trip, best client count):"
	echo "  sim: direct $(best sim direct), mux $(best sim mux)"
	echo "  vm:  direct $(best vm direct), mux $(best vm mux)"
	for c in 1 8 64 1024; do
		v=$(r core fake "$c" mads_per_s)
		[ -n "$v" ] && printf '  core alone on the fake port, %4s files: %s MADs/s (%s ns per MAD, driver included)\n' "$c" "$v" "$(r core fake "$c" ns_per_mad)"
	done
	echo
	echo "Instructions per routed MAD (callgrind Ir; a round trip routes 2 MADs):"
	line="  core only (inside umx_file_write + umx_router_input + umx_file_read), by open files:"
	for c in 1 8 64 1024; do line+=" $c: $(fmt "$(r cg_core fake "$c" ir_per_mad)")"; done
	echo "$line"
	line="  core + fake-port driver program, minus a no-traffic run:"
	for c in 1 8 64; do line+=" $c: $(fmt "$(r cg_prog fake "$c" ir_per_mad)")"; done
	echo "$line"
	for c in 1 8; do
		v=$(r cg_daemon sim "$c" ir_per_mad)
		[ -n "$v" ] || continue
		echo "  umad-mux daemon, FUSE mode under umad2sim, $c client(s), $(r cg_daemon sim "$c" rts) round trips, minus a no-traffic run: $v"
		echo "      of which: umad-mux's own code $(r cg_daemon sim "$c" daemon_per_mad), libfuse $(r cg_daemon sim "$c" libfuse_per_mad)," \
			"libc $(r cg_daemon sim "$c" libc_per_mad), umad2sim+libibumad+libibmad (simulator port) $(r cg_daemon sim "$c" sim_per_mad)," \
			"other $(r cg_daemon sim "$c" other_per_mad)"
	done
	echo
	echo "Daemon memory (VmRSS KiB) with idle open files (each: open + ENABLE_PKEY + one send-only agent):"
	for bed in sim vm; do
		r0=$(r rss "$bed" 0 vmrss_kib) r1=$(r rss "$bed" 100 vmrss_kib) r4=$(r rss "$bed" 4096 vmrss_kib)
		[ -n "$r0$r1$r4" ] || continue
		ra=$(awk '/section=rss / && /bed='"$bed"' / && /rss_after_close/ { sub(/.*vmrss_kib=/, ""); print; exit }' "$RAW")
		mode=$([ "$bed" = sim ] && echo "FUSE mode" || echo "CUSE")
		echo "  $bed ($mode): 0 files $(fmt "$r0"), 100 files $(fmt "$r1"), 4096 files $(fmt "$r4"), all closed again $(fmt "$ra");" \
			"per file: $(kib_per_file "$r0" "$r4" 4096) KiB (0->4096)$( [ -n "$r1" ] && echo ", $(kib_per_file "$r0" "$r1" 100) KiB (0->100)")"
	done
	echo
	echo "Targets (reported, not asserted):"
	c1=$(r cg_core fake 1 ir_per_mad) dmn=$(r cg_daemon sim 1 ir_per_mad) own=$(r cg_daemon sim 1 daemon_per_mad)
	echo "  <= 1,500 instructions per routed MAD in the daemon: core $(fmt "$c1"); whole daemon process $(fmt "$dmn")" \
		"(umad-mux's own code $(fmt "$own"), the rest libfuse, libc and the simulator's umad2sim)"
	echo "  mux round trip <= 1.3x direct (p50, 1 client, paired): sim $(ratio "$(m sim mux 1 p50 pair)" "$(m sim direct 1 p50 pair)")x," \
		"vm $(ratio "$(m vm mux 1 p50 pair)" "$(m vm direct 1 p50 pair)")x (separate runs: sim" \
		"$(ratio "$(m sim mux 1 p50)" "$(m sim direct 1 p50)")x, vm $(ratio "$(m vm mux 1 p50)" "$(m vm direct 1 p50)")x)"
	echo "  >= 100k MADs/s aggregate: sim mux $(best sim mux), vm mux $(best vm mux); the core alone $(fmt "$(r core fake 1 mads_per_s)") MADs/s"
	r0=$(r rss sim 0 vmrss_kib) r4=$(r rss sim 4096 vmrss_kib)
	echo "  <= 64 KiB per idle open file: $(kib_per_file "$r0" "$r4" 4096) KiB (sim, FUSE mode, daemon VmRSS; kernel FUSE/CUSE memory not included)"
	echo "  rdmacm-mux socket path: ${RDMACM:-not measured}"
	[ -n "${BENCH_SECS:-}" ] && echo && echo "make bench measurements took ${BENCH_SECS} s"
} >"$OUT/results.txt"
cat "$OUT/results.txt"

# ---- bench.png ----------------------------------------------------------------
{
	echo "# clients sim_direct_rt sim_mux_rt vm_direct_rt vm_mux_rt sim_direct_p50 sim_mux_p50 vm_direct_p50 vm_mux_p50 sim_direct_p99 sim_mux_p99 vm_direct_p99 vm_mux_p99"
	for c in 1 8 64; do
		line="$c"
		for f in rt p50 p99; do
			for k in "sim direct" "sim mux" "vm direct" "vm mux"; do
				# shellcheck disable=SC2086
				v=$(m $k "$c" "$f")
				line+=" ${v:-?}"
			done
		done
		echo "$line"
	done
} >"$OUT/plot.dat"
if command -v gnuplot >/dev/null; then
	gnuplot <<EOF 2>"$OUT/logs/gnuplot.log" || echo "report: gnuplot failed (see $OUT/logs/gnuplot.log)" >&2
set terminal pngcairo size 1200,500 font ",10" noenhanced
set output "$OUT/bench.png"
set datafile missing "?"
set multiplot layout 1,2 title "umad-mux: direct vs through the mux ($rev)"
set logscale xy
set xrange [0.8:80]
set xtics ("1" 1, "8" 8, "64" 64)
set grid
set key top left
set xlabel "clients"
set ylabel "round trips / s (aggregate)"
set title "throughput"
plot "$OUT/plot.dat" u 1:2 w lp lw 2 pt 7 lc rgb "#1f77b4" t "sim direct", \
     "" u 1:3 w lp lw 2 pt 5 lc rgb "#ff7f0e" t "sim mux (FUSE)", \
     "" u 1:4 w lp lw 2 pt 7 dt 2 lc rgb "#2ca02c" t "vm direct (rxe)", \
     "" u 1:5 w lp lw 2 pt 5 dt 2 lc rgb "#d62728" t "vm mux (CUSE)"
set ylabel "latency, microseconds"
set title "latency p50 (solid) and p99 (dotted)"
plot "$OUT/plot.dat" u 1:6 w lp lw 2 pt 7 lc rgb "#1f77b4" t "sim direct p50", \
     "" u 1:7 w lp lw 2 pt 5 lc rgb "#ff7f0e" t "sim mux p50", \
     "" u 1:8 w lp lw 2 pt 7 lc rgb "#2ca02c" t "vm direct p50", \
     "" u 1:9 w lp lw 2 pt 5 lc rgb "#d62728" t "vm mux p50", \
     "" u 1:10 w lp lw 1 pt 6 dt 3 lc rgb "#1f77b4" t "sim direct p99", \
     "" u 1:11 w lp lw 1 pt 4 dt 3 lc rgb "#ff7f0e" t "sim mux p99", \
     "" u 1:12 w lp lw 1 pt 6 dt 3 lc rgb "#2ca02c" t "vm direct p99", \
     "" u 1:13 w lp lw 1 pt 4 dt 3 lc rgb "#d62728" t "vm mux p99"
unset multiplot
EOF
else
	echo "report: no gnuplot (tests/deps.sh installs gnuplot-nox): no bench.png" >&2
fi
exit 0
