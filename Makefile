# mxsane: plain GNU make build.  Honours CC, CFLAGS, CPPFLAGS, LDFLAGS, DESTDIR, PREFIX,
# SYSCONFDIR.  `make SANITIZE=1` builds with ASan+UBSan (clang), `make WERROR=1` turns warnings
# into errors (CI does), `make check` runs unit and integration tests.

VERSION    := 0.1.0
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DESTDIR    ?=

PKG_CONFIG ?= pkg-config
PKGS       := libcares libconfig libidn2

CFLAGS     ?= -O2 -g
WARN       := -std=c11 -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -Wpointer-arith -Wcast-qual -Wwrite-strings -Wvla \
              -Wundef -Wimplicit-fallthrough -fno-common
ifeq ($(WERROR),1)
WARN       += -Werror
endif
ifeq ($(SANITIZE),1)
CC         := clang
SANFLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif
ifeq ($(FUZZ),1)
CC         := clang
SANFLAGS   := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer
endif
BUILD      ?= build$(if $(filter 1,$(SANITIZE)),-san)$(if $(filter 1,$(FUZZ)),-fuzz)

# pkg-config is asked when a flag is first used, not when the Makefile is read: in
# `make deps check` the packages (pkg-config itself, libcmocka-dev, ...) are installed by
# `deps` after the Makefile was read.  Each answer is kept once asked.
once = $(eval $(1) := $$(shell $(PKG_CONFIG) $(2)))$($(1))
PKG_CFLAGS    = $(call once,PKG_CFLAGS,--cflags $(PKGS))
LIBS          = $(call once,LIBS,--libs $(PKGS))
CMOCKA_LIBS   = $(call once,CMOCKA_LIBS,--libs cmocka)
ALL_CPPFLAGS  = -D_GNU_SOURCE -DMXSANE_VERSION='"$(VERSION)"' \
                -DMXSANE_SYSCONFDIR='"$(SYSCONFDIR)"' -Icore $(PKG_CFLAGS) $(CPPFLAGS)
ALL_CFLAGS   := $(WARN) $(CFLAGS) $(SANFLAGS) -pthread -MMD -MP
ALL_LDFLAGS  := $(LDFLAGS) $(SANFLAGS) -pthread
MILTER_LIBS  := -lmilter

CORE_SRC   := $(sort $(wildcard core/*.c))
CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
CORE_LIB   := $(BUILD)/libmxsane.a

PROGRAMS   := $(BUILD)/mxsane-check
ifneq ($(wildcard milter/*.c),)
PROGRAMS   += $(BUILD)/mxsane-milter
endif
ifneq ($(wildcard policy/*.c),)
PROGRAMS   += $(BUILD)/mxsane-policyd
endif
PROGRAMS   += $(BUILD)/mxsane-report
REPORT_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard report/*.c))

UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_NAMES := $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
REPLAY_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay-%)
FUZZ_SECONDS ?= 60
TOOL_SRC   := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN   := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
# the objects of test programs are kept: a second `make unit` compiles nothing
.SECONDARY: $(UNIT_SRC:%.c=$(BUILD)/%.o) $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%.o) \
            $(BUILD)/fuzz/replay.o $(TOOL_SRC:%.c=$(BUILD)/%.o)

.PHONY: all check unit integration install clean format format-check print-build deps fuzz
all: $(PROGRAMS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(CORE_LIB): $(CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/mxsane-check: $(patsubst %.c,$(BUILD)/%.o,$(wildcard cli/*.c)) $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/mxsane-milter: $(patsubst %.c,$(BUILD)/%.o,$(wildcard milter/*.c)) $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(MILTER_LIBS) $(LIBS)

$(BUILD)/mxsane-policyd: $(patsubst %.c,$(BUILD)/%.o,$(wildcard policy/*.c)) $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# mxsane-report reads gzip-compressed rotated logs through zlib
$(BUILD)/mxsane-report: $(REPORT_OBJ) $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lz $(LIBS)

# a unit test of a front-end module names its object here (it lands in $^ of the rule below)
$(BUILD)/tests/test_report_parse: $(BUILD)/report/parse.o

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter-out $(CORE_LIB),$^) $(CORE_LIB) $(CMOCKA_LIBS) $(LIBS)

$(BUILD)/fuzz/replay-%: $(BUILD)/fuzz/fuzz_%.o $(BUILD)/fuzz/replay.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter-out $(CORE_LIB),$^) $(CORE_LIB) $(LIBS)

$(BUILD)/fuzz/fuzzer-%: $(BUILD)/fuzz/fuzz_%.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $(filter-out $(CORE_LIB),$^) $(CORE_LIB) $(LIBS)

# Fuzz targets link the core library only; a target for a front-end parser names its object
# here (it lands in $^ of the rules above, linked before the core library it may use).
$(BUILD)/fuzz/replay-policy $(BUILD)/fuzz/fuzzer-policy: $(BUILD)/policy/request.o
$(BUILD)/fuzz/replay-report $(BUILD)/fuzz/fuzzer-report: $(BUILD)/report/parse.o

$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# `make check` = unit tests (cmocka, in-process) then integration tests (real DNS server,
# real daemons, real MTAs) driven by tests/run-integration.
ifneq ($(VALGRIND),1)
check: all $(UNIT_BIN) $(TOOL_BIN) $(REPLAY_BIN)
	BUILD=$(BUILD) tests/run-all $(UNIT_BIN) $(REPLAY_BIN)
else
# `make check VALGRIND=1`: the daemons' integration tests (DNS 1*, milter 2*, policy 3*,
# faults and hostile clients 5*) with mxsane-check, mxsane-milter and mxsane-policyd under
# valgrind memcheck.  $(VG_DIR) mirrors $(BUILD): the three programs are scripts that exec
# valgrind on the real binaries, everything else is a symlink, so the tests need no change.
# A memcheck error or a definite leak writes $(VG_DIR)/valgrind/PID.log (-q: nothing else
# is written) and fails the target, as does a failing test.  --vgdb=no: no gdbserver pipes
# in /tmp, which a daemon that dropped privileges cannot remove (and says so in that log).
# Tests scale their timing slack with MXS_VALGRIND=1 (slack_ms in tests/lib/common.sh);
# VALGRIND itself is not passed on, so a test with its own VALGRIND=1 wrapper (30) does not
# wrap valgrind around valgrind.
VG_DIR     := $(BUILD)-vg
VG_TESTS   ?= [1235]*
VALGRIND_CMD := valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
                --errors-for-leak-kinds=definite --track-fds=no --num-callers=30 --vgdb=no \
                --suppressions=$(CURDIR)/tests/valgrind.supp
check: all $(TOOL_BIN)
	rm -rf $(VG_DIR)
	mkdir -p $(VG_DIR)/valgrind
	chmod 1777 $(VG_DIR)/valgrind  # daemons that dropped privileges (or Postfix spawn) log here
	for f in $(BUILD)/*; do ln -s $(CURDIR)/$$f $(VG_DIR)/; done
	for p in mxsane-check mxsane-milter mxsane-policyd; do \
	  [ -x $(BUILD)/$$p ] || continue; rm -f $(VG_DIR)/$$p; \
	  printf '#!/bin/sh\nexec %s --log-file=%s/%%p.log %s "$$@"\n' \
	    '$(VALGRIND_CMD)' '$(CURDIR)/$(VG_DIR)/valgrind' '$(CURDIR)/$(BUILD)/'$$p \
	    >$(VG_DIR)/$$p; chmod 755 $(VG_DIR)/$$p; done
	rm -f $(VG_DIR)/test-logs
	rc=0; env -u VALGRIND BUILD=$(VG_DIR) MXS_VALGRIND=1 ONLY=integration T='$(VG_TESTS)' tests/run-all || rc=1; \
	bad=$$(find $(VG_DIR)/valgrind -name '*.log' -size +0 | sort); \
	if [ -n "$$bad" ]; then rc=1; for f in $$bad; do echo "==== $$f"; cat $$f; done; \
	  echo "valgrind: errors or definite leaks in $$(echo $$bad | wc -w) processes"; \
	else echo "valgrind: $$(ls $(VG_DIR)/valgrind | wc -l) processes, no error, no definite leak"; fi; \
	exit $$rc
endif

unit: $(UNIT_BIN) $(REPLAY_BIN)
	BUILD=$(BUILD) ONLY=unit tests/run-all $(UNIT_BIN) $(REPLAY_BIN)

# libFuzzer (clang): `make fuzz` runs every target FUZZ_SECONDS (default 60) on a work
# corpus seeded from fuzz/corpus/NAME; crashes land in build-fuzz/crashes/NAME.
fuzz:
	$(MAKE) FUZZ=1 $(FUZZ_NAMES:%=build-fuzz/fuzz/fuzzer-%)
	set -e; for n in $(FUZZ_NAMES); do \
	  mkdir -p build-fuzz/corpus/$$n build-fuzz/crashes/$$n; \
	  echo "== fuzz $$n for $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz/fuzzer-$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/crashes/$$n/ -max_len=65536 \
	    build-fuzz/corpus/$$n fuzz/corpus/$$n; \
	done

integration: all $(TOOL_BIN)
	BUILD=$(BUILD) ONLY=integration tests/run-all

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/mxsane \
	           $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(BUILD)/mxsane-check $(BUILD)/mxsane-report $(DESTDIR)$(BINDIR)/
	for p in mxsane-milter mxsane-policyd; do \
	  if [ -f $(BUILD)/$$p ]; then install -m 755 $(BUILD)/$$p $(DESTDIR)$(SBINDIR)/; fi; done
	install -m 644 conf/mxsane.conf $(DESTDIR)$(SYSCONFDIR)/mxsane/mxsane.conf
	for m in man/*.[158]; do s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done

# Install the Debian 12 packages needed to build and test (root).
deps:
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		$$(grep -v '^#' .ci/packages.txt)

FORMAT_FILES = $(wildcard core/*.[ch] cli/*.[ch] milter/*.[ch] policy/*.[ch] report/*.[ch] \
                          tests/unit/*.[ch])
format:
	clang-format -i $(FORMAT_FILES)

# every C file as clang-format (.clang-format) writes it; CI runs this
format-check:
	@bad=$$(for f in $(FORMAT_FILES); do 	  clang-format --dry-run --Werror "$$f" >/dev/null 2>&1 || echo "$$f"; done); 	if [ -n "$$bad" ]; then echo "not formatted (run make format):" $$bad; exit 1; fi; 	echo "format-check: $(words $(FORMAT_FILES)) files as clang-format writes them"

print-build:
	@echo $(BUILD)

clean:
	rm -rf build build-san build-fuzz build-vg build-san-vg

-include $(shell find $(BUILD) -name '*.d' -type f -not -path '*/cache/*' 2>/dev/null)

# ---- Debian package and demo ----
# `make deb`: mxsane_VERSION_ARCH.deb in build/deb, built with dpkg-buildpackage -us -uc -b
# from a clean copy of the tree (packaging/debian becomes debian/ there), checked by lintian.
# `make demo` (root, Debian 12): installs what is missing, builds, runs the sample domains
# through a local DNS server, the milter and an isolated Postfix, prints what happened.
.PHONY: deb demo
deb:
	packaging/build-deb.sh

demo:
	demo/run-demo

# ---------------------------------------------------------------------------------------
# bench: performance benchmarks (not part of `make check`).  Loopback only,
# bounded runs; see docs/benchmarks.md.  `make bench` runs everything (about 30 minutes);
# `make bench BENCH_QUICK=1` a short pass (a minute or two) for iteration.  Results go to
# $(BUILD)/bench/results/ (one directory per run, the summary table in results.md).
BENCH_BIN  := $(addprefix $(BUILD)/bench/,loadgen dunno-server dnsdelay)
BENCH_QUICK ?= 0

.PHONY: bench bench-bin bench-deps
bench-bin: $(BENCH_BIN) $(BUILD)/bench/null-milter $(BUILD)/bench/listlookup
.SECONDARY: $(BENCH_BIN:%=%.o) $(BUILD)/bench/benchnet.o $(BUILD)/bench/null-milter.o \
            $(BUILD)/bench/listlookup.o

$(BUILD)/bench/listlookup: $(BUILD)/bench/listlookup.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bench/null-milter: $(BUILD)/bench/null-milter.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lmilter

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/bench/benchnet.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^

bench: all bench-bin
	BUILD=$(BUILD) BENCH_QUICK=$(BENCH_QUICK) bench/run

# `make bench-compare BASE=REV` (default: the commit before HEAD): the warm policy and milter
# scenarios with REV's binaries side by side with this build's (variants mxsane-base and
# milter0base in results.md), then bench-callgrind's figure for both.
BASE ?= HEAD~1
.PHONY: bench-compare
bench-compare: all bench-bin
	base=$$(BUILD=$(BUILD) bench/build-base $(BASE)) && \
	BUILD=$(BUILD) BENCH_QUICK=$(BENCH_QUICK) BENCH_BASE_BUILD=$$base \
		BENCH_ONLY="$(or $(BENCH_ONLY),warm milter)" bench/run && \
	echo "== callgrind, this build" && BUILD=$(BUILD) bench/callgrind-warm && \
	echo "== callgrind, base build $$(cat $$base/.commit)" && \
		BUILD=$(BUILD) CG_POLICYD=$$base/mxsane-policyd bench/callgrind-warm

# Instructions per warm policy request under callgrind: a figure the machine's noise does
# not move (bench/callgrind-warm; about a minute).
.PHONY: bench-callgrind
bench-callgrind: all bench-bin
	BUILD=$(BUILD) bench/callgrind-warm

# The test packages (make deps) plus postfwd (the peer compared against) and perf (root).
bench-deps: deps
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		$$(grep -v '^#' bench/packages.txt)

# ---------------------------------------------------------------------------------------
# soak: a long run under steady load (not part of `make check`).  SOAK_SECONDS (default 600) of
# mixed load with connection churn on mxsane-milter and mxsane-policyd at once, a reload
# every 30 s on both; asserts no crash, every request answered, fds and RSS flat (slope).
# Figures of a recorded run: docs/soak.md.
SOAK_SECONDS ?= 600
.PHONY: soak
soak: all $(BUILD)/tools/policy_client
	BUILD=$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) tests/soak/run
