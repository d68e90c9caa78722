# umad-mux - see README.md.  `make deps` installs the Debian packages,
# `make check` runs every test (unit, FUSE, simulated fabric, real-kernel VM).
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
PKGS     := fuse3 libibumad

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter
CFLAGS   ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Icore
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(shell pkg-config --cflags $(PKGS))
LDLIBS   = $(shell pkg-config --libs $(PKGS)) -lpthread

ifeq ($(SANITIZE),1)
BUILD    := build-san
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
endif

CORE_SRCS  := $(wildcard core/*.c)
CUSE_SRCS  := $(filter-out cuse/main.c,$(wildcard cuse/*.c))
UNIT_SRCS  := $(wildcard tests/unit/*.c)
TOOL_SRCS  := $(wildcard tests/tools/*.c tests/vm/*.c tests/sim/*.c tests/e2e/*.c)

CORE_OBJS  := $(CORE_SRCS:%.c=$(BUILD)/%.o)
CUSE_OBJS  := $(CUSE_SRCS:%.c=$(BUILD)/%.o)
CORE_LIB   := $(BUILD)/libumx-core.a
FRONT_LIB  := $(BUILD)/libumx-front.a
DAEMON     := $(if $(wildcard cuse/main.c),$(BUILD)/umad-mux)
UNIT_BINS  := $(UNIT_SRCS:%.c=$(BUILD)/%)
TOOL_BINS  := $(TOOL_SRCS:%.c=$(BUILD)/%)

.SECONDARY:
.PHONY: all deps check check-run run clean install uninstall
all: $(DAEMON) $(UNIT_BINS) $(TOOL_BINS)

deps:
	sh tests/deps.sh

# check installs what it needs, then builds and runs in a fresh make so that
# pkg-config sees the freshly installed libraries.
check: deps
	$(MAKE) all
	$(MAKE) check-run

check-run:
	BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run.sh

# the main job: umad-mux on the local HCA, or on the simulated fabric when
# there is none (KEEP=1: leave it running until Ctrl-C)
run: deps
	$(MAKE) all
	BUILD=$(BUILD) cuse/umad-mux-demo $(if $(KEEP),--keep)

$(BUILD)/%.o: %.c $(wildcard include/umx/*.h core/*.h cuse/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(CORE_LIB): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(FRONT_LIB): $(CUSE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(BUILD)/umad-mux: $(BUILD)/cuse/main.o $(FRONT_LIB) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(FRONT_LIB) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin
	$(if $(DAEMON),install -m 755 $(DAEMON) $(DESTDIR)$(PREFIX)/sbin/umad-mux)

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/umad-mux

clean:
	rm -rf build build-san

# fragments owned by their directories: fuzzing (make fuzz, fuzz-ci) and
# benchmarks (make bench)
-include tests/fuzz/fuzz.mk
-include tests/bench/bench.mk
