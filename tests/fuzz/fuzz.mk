# tests/fuzz/fuzz.mk - libFuzzer targets for core/ (include from the main
# Makefile, or use alone: make -f tests/fuzz/fuzz.mk fuzz).
#   make fuzz-build   build every target into build-fuzz/
#   make fuzz         run each target FUZZ_SECONDS (default 60) on its seed corpus
#   make fuzz-ci      a short bounded pass (FUZZ_CI_SECONDS, default 20), TAP lines,
#                     non-zero exit on a crash
# New corpus entries go to build-fuzz/corpus/<target>/ (the seeds in
# tests/fuzz/corpus/<target>/ stay as committed); crash reproducers to
# FUZZ_ARTIFACTS/<target>-crash-* (default build-fuzz/crashes).
FUZZ_CC        ?= clang
FUZZ_BUILD     ?= build-fuzz
FUZZ_SECONDS   ?= 60
FUZZ_CI_SECONDS ?= 20
FUZZ_ARTIFACTS ?= $(FUZZ_BUILD)/crashes
FUZZ_SAN       := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS    ?= -g -O1
FUZZ_ALL_CFLAGS = $(FUZZ_CFLAGS) $(FUZZ_SAN) -std=c11 -D_GNU_SOURCE -Iinclude -Icore \
		  -Wall -Wextra -Wno-unused-parameter -Wno-unused-function

# limits the core may or may not have yet
FUZZ_ALL_CFLAGS += $(if $(shell grep -s cm_ids_max include/umx/core.h),-DFZ_HAVE_CM_LIMITS) \
		   $(if $(shell grep -s idle_send_agents include/umx/core.h),-DFZ_HAVE_IDLE_SEND_AGENTS)

FUZZ_TARGETS   := $(sort $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c))))
FUZZ_CORE_SRCS := $(filter-out core/port_umad.c,$(wildcard core/*.c))
FUZZ_CORE_OBJS := $(FUZZ_CORE_SRCS:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_BINS      := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
# (fuzz_rdmacm_msg.c compiles cuse/rdmacm_proto.c and rdmacm_peers.c in)
FUZZ_HDRS      := $(wildcard include/umx/*.h core/*.h tests/fuzz/*.h cuse/rdmacm_proto.* cuse/rdmacm_peers.*)

.PHONY: fuzz-build fuzz fuzz-ci fuzz-clean
.SECONDARY: $(FUZZ_CORE_OBJS)
fuzz-build: $(FUZZ_BINS)

# core: coverage instrumentation, no libFuzzer main
$(FUZZ_BUILD)/core/%.o: core/%.c $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_ALL_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_CORE_OBJS) $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_CORE_OBJS)

fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_ARTIFACTS=$(FUZZ_ARTIFACTS) \
		sh tests/fuzz/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-ci: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_ARTIFACTS=$(FUZZ_ARTIFACTS) \
		sh tests/fuzz/fuzz.sh $(FUZZ_CI_SECONDS) $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FUZZ_BUILD)
