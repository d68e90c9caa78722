#!/bin/sh
# tests/fuzz/run.sh - suite "fuzz" for tests/run.sh: builds the libFuzzer
# targets (tests/fuzz/fuzz.mk) and runs the short bounded pass (fuzz-ci),
# printing TAP.  FUZZ_CI_SECONDS sets the time per target (default 20).
set -u
cd "$(dirname "$0")/../.."
if ! command -v clang >/dev/null 2>&1; then
	echo "ok - fuzz # SKIP clang not installed"; exit 0
fi
if ! out=$(make -s -f tests/fuzz/fuzz.mk fuzz-build 2>&1); then
	echo "$out" | tail -n 30 | sed 's/^/# /'
	echo "not ok - fuzz: build failed"; exit 1
fi
echo "ok - fuzz: targets built"
make -s -f tests/fuzz/fuzz.mk fuzz-ci
