# umad-mux - see README.md.  `make deps` installs the Debian packages,
# `make check` runs every test (unit, FUSE, simulated fabric, real-kernel VM).
PREFIX   ?= /usr/local
DESTDIR  ?=
# install locations (udev and systemd read /usr/local/lib/... too)
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
UDEVRULESDIR ?= $(PREFIX)/lib/udev/rules.d
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
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
CTL_SRCS   := $(wildcard cuse/ctl/*.c)
CTL        := $(if $(CTL_SRCS),$(BUILD)/umad-muxctl)
UNIT_BINS  := $(UNIT_SRCS:%.c=$(BUILD)/%)
TOOL_BINS  := $(TOOL_SRCS:%.c=$(BUILD)/%)

.SECONDARY:
.PHONY: all deps check check-run run clean install uninstall
all: $(DAEMON) $(CTL) $(UNIT_BINS) $(TOOL_BINS)

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

# the control tool: plain libc
$(BUILD)/umad-muxctl: $(CTL_SRCS:%.c=$(BUILD)/%.o)
	$(CC) $(LDFLAGS) -o $@ $^

# unit tests may test a front-end file with no FUSE in it (cuse/rdmacm_peers.c):
# only the objects they use are taken from the front-end library
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(FRONT_LIB) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(FRONT_LIB) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# binaries, udev rules, the systemd template unit (its paths follow SBINDIR
# and SYSCONFDIR), man pages, and the example config - never over an existing
# one (the admin's).  `make install DESTDIR=/stage PREFIX=/usr` for a package.
MAN8 := cuse/man/umad-mux.8 cuse/man/umad-muxctl.8
MAN5 := cuse/man/umad-mux.conf.5
install: $(DAEMON) $(CTL)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UDEVRULESDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSCONFDIR)/umad-mux
	install -m 755 $(DAEMON) $(DESTDIR)$(SBINDIR)/umad-mux
	install -m 755 $(CTL) $(DESTDIR)$(SBINDIR)/umad-muxctl
	install -m 755 cuse/umad-mux-exec $(DESTDIR)$(SBINDIR)/umad-mux-exec
	install -m 644 udev/92-umad-mux.rules $(DESTDIR)$(UDEVRULESDIR)/92-umad-mux.rules
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		udev/umad-mux@.service.in >$(DESTDIR)$(UNITDIR)/umad-mux@.service
	chmod 644 $(DESTDIR)$(UNITDIR)/umad-mux@.service
	install -m 644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 644 udev/umad-mux.conf $(DESTDIR)$(SYSCONFDIR)/umad-mux/umad-mux.conf.example
	test -e $(DESTDIR)$(SYSCONFDIR)/umad-mux/umad-mux.conf || \
		install -m 644 udev/umad-mux.conf $(DESTDIR)$(SYSCONFDIR)/umad-mux/umad-mux.conf

# the config stays when it differs from the example (the admin changed it)
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/umad-mux $(DESTDIR)$(SBINDIR)/umad-muxctl \
		$(DESTDIR)$(SBINDIR)/umad-mux-exec $(DESTDIR)$(UDEVRULESDIR)/92-umad-mux.rules \
		$(DESTDIR)$(UNITDIR)/umad-mux@.service \
		$(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5)))
	if cmp -s udev/umad-mux.conf $(DESTDIR)$(SYSCONFDIR)/umad-mux/umad-mux.conf; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/umad-mux/umad-mux.conf; fi
	rm -f $(DESTDIR)$(SYSCONFDIR)/umad-mux/umad-mux.conf.example
	-rmdir $(DESTDIR)$(SYSCONFDIR)/umad-mux 2>/dev/null

clean:
	rm -rf build build-san

# fragments owned by their directories: fuzzing (make fuzz, fuzz-ci) and
# benchmarks (make bench)
-include tests/fuzz/fuzz.mk
-include tests/bench/bench.mk
