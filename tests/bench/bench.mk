# tests/bench/bench.mk - `make bench` (included by the main Makefile; not
# part of `make check`).  See tests/bench/README.md.
#   make bench         installs what it needs (tests/deps.sh, the VM bed's
#                      setup.sh), builds, runs tests/bench/run.sh: results in
#                      $(BUILD)/bench/results.{txt,csv} and bench.png
#   make bench-build   only the daemon and the benchmark programs
#   make bench-run     only the measurements (build first)
# Knobs for bench-run: BENCH_SKIP="vm sim core cg rss" (parts to leave out),
# BENCH_QUICK=1 (smaller counts), see run.sh.
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)

.PHONY: bench bench-build bench-run

# like check: packages first, then a fresh make so pkg-config sees them
bench: deps
	$(MAKE) bench-build
	$(MAKE) bench-run

bench-build: $(DAEMON) $(BENCH_BINS)

bench-run:
	BUILD=$(BUILD) tests/bench/run.sh

$(BUILD)/bench/%: tests/bench/%.c $(CORE_LIB) $(wildcard include/umx/*.h core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_LIB) $(LDLIBS)
