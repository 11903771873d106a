# wxbench - what W^X costs a JIT compiler.
#
#   make bench            run the whole suite into data/<machine>/<UTC time>/, then plots and report
#   make bench QUICK=1    fast smoke run;  SCENARIO=a,b  STRATEGY=x,y  narrow it;  ARGS=... more flags
#   make bench HARDENED=1 macOS: the suite signed ad hoc with the hardened runtime (allow-jit), then the MAP_JIT
#                         strategies signed with jit-write-allowlist too (tools/hardened.sh); refused elsewhere
#   make test             build and run every test; ends with "N passed, N failed"
#   make deps             check (and install, or say how to install) what the build needs
#   make test-cross       aarch64 Linux under qemu, macOS compile-and-link checks with zig
#   make aa               AA_PAIRS (3) pairs of runs back to back: false positives, noise floor, the band (aa.json)
#   make mutate           put each bug of tests/mutants/ into a scratch copy and check the tests catch it
#   make clean
#
# Personal overrides go in local.mk (git-ignored).

-include local.mk

UNAME_S := $(shell uname -s)
CC ?= cc
CXX ?= c++
PKG_CONFIG ?= pkg-config
WERROR ?= 0
OPT ?= -O2

WX_VERSION := $(shell git describe --always --dirty --tags 2>/dev/null || echo unknown)
GBENCH_CFLAGS := $(shell $(PKG_CONFIG) --cflags benchmark 2>/dev/null)
GBENCH_LIBS := $(shell $(PKG_CONFIG) --libs benchmark 2>/dev/null || echo -lbenchmark)
GBENCH_VERSION := $(shell $(PKG_CONFIG) --modversion benchmark 2>/dev/null || echo unknown)

WARN := -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror)
CPPFLAGS_ALL := -DWX_VERSION='"$(WX_VERSION)"' $(CPPFLAGS)
CFLAGS_ALL := -std=c11 $(OPT) -g $(WARN) -MMD -MP -pthread $(CFLAGS)
CXXFLAGS_ALL := -std=c++17 $(OPT) -g $(WARN) -MMD -MP -pthread $(GBENCH_CFLAGS) \
                -DWX_GBENCH_VERSION='"$(GBENCH_VERSION)"' $(CXXFLAGS)
LDLIBS_ALL := $(GBENCH_LIBS) -pthread -lm $(LDLIBS)

ifeq ($(UNAME_S),Darwin)
PLATFORM_SRC := bench/core/platform_macos.c
else
PLATFORM_SRC := bench/core/platform_linux.c
endif

# The C core (bench/core/, bench/strategies/): no Google Benchmark,
# unit-testable and cross-compilable alone.
CORE_SRC := $(filter-out bench/core/platform_%.c,$(sort $(wildcard bench/core/*.c))) bench/core/platform_common.c \
            $(PLATFORM_SRC) $(sort $(wildcard bench/strategies/*.c))
# The application (bench/app/): the parts that need no Google Benchmark
# (unit-tested, cross-compiled), then those that run it through the shim.
APP_PLAIN_SRC := bench/app/csv.c bench/app/audit.c bench/app/probe.c bench/app/stats.c \
                 bench/app/results.c
APP_GB_SRC := bench/app/main.c bench/app/options.c bench/app/runner.c bench/app/child.c bench/app/harness.c bench/app/meta.c \
              bench/app/trace.c bench/app/replay.c
APP_SRC := $(APP_PLAIN_SRC) $(APP_GB_SRC) $(sort $(wildcard scenarios/*.c))
SHIM_SRC := bench/gbench_shim.cc

B := build
BT := build/testing
CORE_OBJ := $(CORE_SRC:%.c=$(B)/%.o)
APP_OBJ := $(APP_SRC:%.c=$(B)/%.o)
SHIM_OBJ := $(B)/bench/gbench_shim.o
T_CORE_OBJ := $(CORE_SRC:%.c=$(BT)/%.o)
T_APP_OBJ := $(APP_SRC:%.c=$(BT)/%.o)

PYTHON = $(shell tools/find_python.sh)
QUICK ?=
SCENARIO ?=
STRATEGY ?=
ARGS ?=
BENCH_FLAGS := $(if $(filter-out 0,$(QUICK)),--quick) $(if $(SCENARIO),--scenario $(SCENARIO)) \
               $(if $(STRATEGY),--strategy $(STRATEGY)) $(ARGS)
HARDENED ?=
# The second signing of HARDENED=1 (jit-write-allowlist) measures the MAP_JIT strategies only.
ALLOWLIST_FLAGS := $(if $(filter-out 0,$(QUICK)),--quick) $(if $(SCENARIO),--scenario $(SCENARIO)) \
                   --strategy mapjit,mapjit_callback $(ARGS)

.PHONY: all bench test deps deps-build deps-test deps-bench clean warnings sanitize unit aa mutate
.DEFAULT_GOAL := all

# The interposer `wxbench trace` loads into the traced program (beside the
# wxbench binary): a shared library on Linux (LD_PRELOAD), a dylib on macOS
# (DYLD_INSERT_LIBRARIES). Only the C library: nothing of wxbench's own.
ifeq ($(UNAME_S),Darwin)
INTERPOSER := libwxtrace.dylib
INTERPOSER_LDFLAGS := -dynamiclib
else
INTERPOSER := libwxtrace.so
INTERPOSER_LDFLAGS := -shared -Wl,-z,nodelete -ldl
endif
all: $(B)/wxbench $(B)/$(INTERPOSER)

$(B)/$(INTERPOSER): bench/interpose/wxtrace.c bench/interpose/wxtrace_format.h
	@mkdir -p $(B)
	$(CC) -std=c11 $(OPT) -g $(WARN) -fPIC -fvisibility=hidden -pthread $(CFLAGS) -o $@ $< $(LDFLAGS) \
	  $(INTERPOSER_LDFLAGS) -pthread

$(B)/libwxcore.a: $(CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/wxbench: $(APP_OBJ) $(SHIM_OBJ) $(B)/libwxcore.a
	$(CXX) -o $@ $(APP_OBJ) $(SHIM_OBJ) $(B)/libwxcore.a $(LDFLAGS) $(LDLIBS_ALL)

# Test build: test-only strategies (test_segv, test_hang) and fault injection.
$(BT)/libwxcore.a: $(T_CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/wxbench-test: $(T_APP_OBJ) $(SHIM_OBJ) $(BT)/libwxcore.a
	$(CXX) -o $@ $(T_APP_OBJ) $(SHIM_OBJ) $(BT)/libwxcore.a $(LDFLAGS) $(LDLIBS_ALL)

# A program whose W^X calls are known exactly, for the trace tests.
$(B)/wxtrace-target: tests/trace_target.c
	@mkdir -p $(B)
	$(CC) -std=c11 $(OPT) -g $(WARN) -pthread $(CFLAGS) -o $@ $< $(LDFLAGS) -pthread

# Unit tests of the C core alone (no Google Benchmark).
$(B)/unit_tests: $(B)/tests/unit.o $(APP_PLAIN_SRC:%.c=$(B)/%.o) $(B)/libwxcore.a
	$(CC) -o $@ $^ $(LDFLAGS) -pthread -lm

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c $< -o $@

$(BT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) -DWX_TESTING $(CFLAGS_ALL) -c $< -o $@

$(B)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS_ALL) $(CXXFLAGS_ALL) -c $< -o $@

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# The version wxbench records (git describe): a stamp rewritten only when it
# changes, so that a new commit rebuilds the files that print it.
.PHONY: FORCE
$(B)/version.stamp: FORCE
	@mkdir -p $(B); echo '$(WX_VERSION)' | cmp -s - $@ 2>/dev/null || echo '$(WX_VERSION)' > $@
VERSIONED := main meta runner trace
$(foreach o,$(VERSIONED),$(B)/bench/app/$(o).o $(BT)/bench/app/$(o).o): $(B)/version.stamp

# ---------------------------------------------------------------------------
# Dependencies: check, then install (apt-get / Homebrew) or say how.
deps: deps-bench deps-test
deps-build:
	@tools/deps.sh build
deps-bench:
	@tools/deps.sh bench
deps-test:
	@tools/deps.sh test

# ---------------------------------------------------------------------------
# HARDENED=1 is checked first: refused (exit 2) before anything is installed, built or measured where it
# cannot be done (not macOS, no codesign).
ifneq ($(filter-out 0,$(HARDENED)),)
bench:
	@tools/hardened.sh check
	@$(MAKE) --no-print-directory deps-bench
	@$(MAKE) --no-print-directory all
	@MAKE="$(MAKE)" tools/hardened.sh bench $(B) "$(BENCH_FLAGS)" "$(ALLOWLIST_FLAGS)"
else
bench: deps-bench
	@$(MAKE) --no-print-directory all
	@MAKE="$(MAKE)" tools/bench.sh $(B)/wxbench $(BENCH_FLAGS)
endif

# What `make bench` does with a finished run: figures, report, terminal chart.
.PHONY: after-bench
ifneq ($(wildcard scripts/plots.mk),)
include scripts/plots.mk
after-bench: report terminal-chart
else
after-bench:
	@true
endif

# An independent timing program the tests hold wxbench's figures against:
# no code shared with wxbench (tests/reference/reftime.c).
$(B)/reftime: tests/reference/reftime.c
	@mkdir -p $(B)
	$(CC) -std=c11 $(OPT) $(WARN) -o $@ $<

test: deps-test
	@$(MAKE) --no-print-directory all $(B)/wxbench-test $(B)/unit_tests $(B)/reftime $(B)/wxtrace-target
	@tests/run.sh

# A/A: AA_PAIRS pairs of full runs of the same binary, back to back (QUICK=1,
# SCENARIO=, STRATEGY=, ARGS= as for bench), each pair compared as compare.py
# compares runs (and run a split into its odd and even repetitions); then the
# machine's run-to-run band from all pairs, written to data/<machine>/aa.json,
# where compare.py finds it. Runs under build/aa/<UTC time>/pair<K>/{a,b}.
AA_PAIRS ?= 3
AA_DIR = build/aa/$(shell date -u +%Y%m%dT%H%M%SZ)
aa: deps-bench
	@$(MAKE) --no-print-directory all
	@d=$(AA_DIR); for k in $$(seq 1 $(AA_PAIRS)); do p=$$d/pair$$k; \
	  echo "-- A/A pair $$k of $(AA_PAIRS): $$p"; \
	  $(B)/wxbench $(BENCH_FLAGS) --out $$p/a >/dev/null && \
	  $(B)/wxbench $(BENCH_FLAGS) --out $$p/b >/dev/null && \
	  $(PYTHON) scripts/aa.py $$p/a $$p/b --out $$p && \
	  echo "-- the same statistics without the drift between runs: run a's odd repetitions against its even ones" && \
	  $(PYTHON) scripts/aa.py $$p/a --split --out $$p/split || exit 1; \
	done; \
	echo "-- the band over $(AA_PAIRS) pairs"; \
	$(PYTHON) scripts/aa.py --band $$(for k in $$(seq 1 $(AA_PAIRS)); do echo $$d/pair$$k; done)

# Mutation testing (tools/mutate.py): MUTANTS=a,b runs only those.
mutate: deps-test
	@$(MAKE) --no-print-directory all $(B)/wxbench-test $(B)/unit_tests $(B)/reftime $(B)/wxtrace-target
	@$(PYTHON) tools/mutate.py $(if $(MUTANTS),--only $(MUTANTS))

# Both compilers, warnings as errors.
warnings:
	$(MAKE) --no-print-directory clean
	$(MAKE) --no-print-directory WERROR=1 CC=gcc CXX=g++ all $(B)/wxbench-test $(B)/unit_tests $(B)/reftime $(B)/wxtrace-target
	$(MAKE) --no-print-directory clean
	$(MAKE) --no-print-directory WERROR=1 CC=clang CXX=clang++ all $(B)/wxbench-test $(B)/unit_tests $(B)/reftime $(B)/wxtrace-target

# AddressSanitizer + UndefinedBehaviorSanitizer over the unit tests and a quick run.
sanitize:
	$(MAKE) --no-print-directory B=build/asan BT=build/asan/testing OPT=-O1 \
	  CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
	  CXXFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" build/asan/wxbench build/asan/unit_tests
	ASAN_OPTIONS=handle_segv=0:handle_sigbus=0:handle_sigill=0:detect_leaks=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build/asan/unit_tests
	rm -rf build/asan/run
	ASAN_OPTIONS=handle_segv=0:handle_sigbus=0:handle_sigill=0:detect_leaks=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build/asan/wxbench --quick --out build/asan/run

clean:
	rm -rf $(B)
include cross.mk
