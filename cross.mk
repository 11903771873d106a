# cross.mk - `make test-cross`, included by the Makefile. On a Linux x86_64 host:
#
#   aarch64 Linux  the C core and its unit tests (tests/unit.c with the parts of
#                  bench/app/ that need no Google Benchmark) built with
#                  aarch64-linux-gnu-gcc, statically, and run under qemu-aarch64;
#                  the other C files compiled. Behaviour is checked there,
#                  timings mean nothing under emulation.
#   macOS          every C file compiled with zig for aarch64-macos.11.0 and
#                  x86_64-macos.11.0, and for aarch64-macos.12.0 (zig's 11.x
#                  headers lack pthread_jit_write_with_callback_np); the unit-test
#                  binary linked as a Mach-O for all three; dualmap.c also built
#                  and linked with its own mach_vm declarations (as where the
#                  SDK lacks <mach/mach.h>); gbench_shim.cc compiled for
#                  aarch64-macos.12.0 against a copy of only Google Benchmark's
#                  headers; the trace interposer (bench/interpose/wxtrace.c)
#                  linked as a dylib per target and checked for its
#                  __interpose section. A Mach-O cannot run here: this proves
#                  that the macOS code compiles and links, nothing more.
#   Google Benchmark  with GBENCH_NEW_INCLUDE=dir (a dir holding benchmark/
#                  benchmark.h of a newer Google Benchmark than the system's,
#                  e.g. `git clone --depth 1 https://github.com/google/benchmark
#                  /tmp/gbnew` then GBENCH_NEW_INCLUDE=/tmp/gbnew/include; never
#                  inside the repository), gbench_shim.cc is also compiled
#                  against those headers with g++, clang++ (where installed) and
#                  zig c++ for aarch64-macos.12.0, -Werror (`make gbench-new-check`
#                  alone does only that).
#
# Warnings are errors everywhere. tools/install_cross.sh installs the tools
# (apt: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; npm: zig 0.11.0).

.PHONY: test-cross cross-tools cross-build cross-linux-aarch64 cross-macos cross-macos-interposer gbench-new-check

CROSS := $(B)/cross
CROSS_CC ?= aarch64-linux-gnu-gcc
QEMU_AARCH64 ?= qemu-aarch64
GBENCH_INCLUDE ?= /usr/include/benchmark
GBENCH_NEW_INCLUDE ?=
CROSS_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CROSS_FLAGS := -std=c11 -O2 -Wall -Wextra -Werror -pthread -DWX_VERSION='"$(WX_VERSION)"'

# From the Makefile's lists, so that files added there are checked here too:
# the core without its platform file; the unit tests with every C file of the
# command but main.c and runner.c (which need the Google Benchmark shim); the
# rest compiled only.
CROSS_COMMON := $(filter-out $(PLATFORM_SRC),$(CORE_SRC))
CROSS_UNIT := tests/unit.c $(APP_PLAIN_SRC)
CROSS_APP := $(filter-out $(CROSS_UNIT),$(APP_SRC))
CROSS_LINUX_SRC := $(CROSS_COMMON) bench/core/platform_linux.c
CROSS_MAC_SRC := $(CROSS_COMMON) bench/core/platform_macos.c
CROSS_MAC_TARGETS := aarch64-macos.11.0 x86_64-macos.11.0 aarch64-macos.12.0

# Install (or say how to install) the tools, then build and check with as
# many jobs as there are CPUs.
test-cross:
	@tools/install_cross.sh
	@$(MAKE) --no-print-directory -j$(CROSS_JOBS) cross-build ZIG="$$(tools/find_zig.sh)"
	@$(MAKE) --no-print-directory cross-linux-aarch64
	@if [ -n "$(GBENCH_NEW_INCLUDE)" ]; then $(MAKE) --no-print-directory gbench-new-check; \
	 else echo "test-cross: GBENCH_NEW_INCLUDE not set: the shim was not compiled against a newer Google Benchmark"; fi
	@echo "test-cross: aarch64 Linux unit tests passed under qemu; macOS ($(CROSS_MAC_TARGETS)) compiled and linked; the trace interposer built for aarch64 Linux and linked as a macOS dylib"

cross-build: $(CROSS)/aarch64-linux/unit_tests $(CROSS_APP:%.c=$(CROSS)/aarch64-linux/%.o) cross-macos \
             $(CROSS)/aarch64-linux/libwxtrace.so cross-macos-interposer

# ---------------------------------------------------------------- aarch64 Linux
CL := $(CROSS)/aarch64-linux

$(CL)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CROSS_CC) $(CROSS_FLAGS) -MMD -MP -c $< -o $@

$(CL)/unit_tests: $(CROSS_UNIT:%.c=$(CL)/%.o) $(CROSS_LINUX_SRC:%.c=$(CL)/%.o)
	$(CROSS_CC) -static -o $@ $^ -pthread -lm

cross-linux-aarch64: $(CL)/unit_tests
	$(QEMU_AARCH64) -L /usr/aarch64-linux-gnu $(CL)/unit_tests

# ------------------------------------------------------------------------ macOS
# $(call cross_mac,target): objects, the linked unit tests and their checks.
define cross_mac
$(CROSS)/$(1)/%.o: %.c
	@mkdir -p $$(dir $$@)
	@test -n "$$(ZIG)" || { echo "test-cross: no zig (run tools/install_cross.sh)"; exit 1; }
	$$(ZIG) cc -target $(1) $$(CROSS_FLAGS) -MMD -MP -c $$< -o $$@

$(CROSS)/$(1)/unit_tests: $(CROSS_UNIT:%.c=$(CROSS)/$(1)/%.o) $(CROSS_MAC_SRC:%.c=$(CROSS)/$(1)/%.o)
	$$(ZIG) cc -target $(1) -o $$@ $$^
	@tools/check_macho.sh $$@ $(1)

# The tests' independent timing program, linked too.
$(CROSS)/$(1)/reftime: tests/reference/reftime.c
	@mkdir -p $$(dir $$@)
	$$(ZIG) cc -target $(1) $$(CROSS_FLAGS) -o $$@ $$<

cross-macos: $(CROSS)/$(1)/unit_tests $(CROSS_APP:%.c=$(CROSS)/$(1)/%.o) $(CROSS)/$(1)/reftime
endef
$(foreach t,$(CROSS_MAC_TARGETS),$(eval $(call cross_mac,$(t))))

# dualmap.c with its own mach_vm declarations, linked, for both architectures.
$(CROSS)/declared-%/dualmap.o: bench/strategies/dualmap.c
	@mkdir -p $(dir $@)
	$(ZIG) cc -target $* $(CROSS_FLAGS) -DWX_DECLARE_MACH_VM -c $< -o $@

$(CROSS)/declared-%/unit_tests: $(CROSS)/declared-%/dualmap.o
	$(ZIG) cc -target $* -o $@ $(filter-out %/dualmap.o,$(CROSS_UNIT:%.c=$(CROSS)/$*/%.o) \
	  $(CROSS_MAC_SRC:%.c=$(CROSS)/$*/%.o)) $<
	@tools/check_macho.sh $@ $*

$(CROSS)/declared-aarch64-macos.11.0/unit_tests: $(CROSS)/aarch64-macos.11.0/unit_tests
$(CROSS)/declared-x86_64-macos.11.0/unit_tests: $(CROSS)/x86_64-macos.11.0/unit_tests

cross-macos: $(CROSS)/declared-aarch64-macos.11.0/unit_tests $(CROSS)/declared-x86_64-macos.11.0/unit_tests \
             $(CROSS)/aarch64-macos.12.0/bench/gbench_shim.o

# The shim against a copy of only Google Benchmark's headers (not the rest
# of /usr/include, which is Linux's).
$(CROSS)/gbench-include/benchmark/benchmark.h: $(GBENCH_INCLUDE)/benchmark.h
	@mkdir -p $(CROSS)/gbench-include
	rm -rf $(CROSS)/gbench-include/benchmark
	cp -R $(GBENCH_INCLUDE) $(CROSS)/gbench-include/benchmark

$(GBENCH_INCLUDE)/benchmark.h:
	@echo "test-cross: no Google Benchmark headers in $(GBENCH_INCLUDE) (apt-get install libbenchmark-dev," \
	      "or set GBENCH_INCLUDE=dir/with/benchmark.h)"; exit 1

$(CROSS)/aarch64-macos.12.0/bench/gbench_shim.o: bench/gbench_shim.cc bench/gbench_shim.h \
                                                 $(CROSS)/gbench-include/benchmark/benchmark.h
	@mkdir -p $(dir $@)
	$(ZIG) c++ -target aarch64-macos.12.0 -std=c++17 -O2 -Wall -Wextra -Werror -I$(CROSS)/gbench-include \
	  -DWX_GBENCH_VERSION='"$(GBENCH_VERSION)"' -c $< -o $@

# The shim against a newer Google Benchmark's headers (GBENCH_NEW_INCLUDE):
# current releases rename benchmark::internal::Benchmark and deprecate the old
# name, so the shim must build warning-free with both. A copy of only their
# benchmark/ directory is used, so nothing else of that tree is on the path.
GBN := $(CROSS)/gbench-new
gbench-new-check:
	@test -n "$(GBENCH_NEW_INCLUDE)" || { echo "gbench-new-check: set GBENCH_NEW_INCLUDE=dir/with/benchmark/benchmark.h" \
	  "(e.g. git clone --depth 1 https://github.com/google/benchmark /tmp/gbnew; GBENCH_NEW_INCLUDE=/tmp/gbnew/include)"; exit 1; }
	@test -f "$(GBENCH_NEW_INCLUDE)/benchmark/benchmark.h" || { echo "gbench-new-check: no" \
	  "$(GBENCH_NEW_INCLUDE)/benchmark/benchmark.h"; exit 1; }
	@rm -rf $(GBN) && mkdir -p $(GBN)/include && cp -R "$(GBENCH_NEW_INCLUDE)/benchmark" $(GBN)/include/benchmark
	g++ -std=c++17 -O2 -Wall -Wextra -Werror -I$(GBN)/include -DWX_GBENCH_VERSION='"new"' -c bench/gbench_shim.cc \
	  -o $(GBN)/shim-g++.o
	@if command -v clang++ >/dev/null 2>&1; then \
	  echo "clang++ -std=c++17 -O2 -Wall -Wextra -Werror -I$(GBN)/include -c bench/gbench_shim.cc"; \
	  clang++ -std=c++17 -O2 -Wall -Wextra -Werror -I$(GBN)/include -DWX_GBENCH_VERSION='"new"' \
	    -c bench/gbench_shim.cc -o $(GBN)/shim-clang++.o; \
	 else echo "gbench-new-check: no clang++ here; g++ and zig only"; fi
	@z="$(ZIG)"; [ -n "$$z" ] || z=$$(tools/find_zig.sh) || { echo "gbench-new-check: no zig (run tools/install_cross.sh)"; \
	  exit 1; }; echo "zig c++ -target aarch64-macos.12.0 -std=c++17 -O2 -Wall -Wextra -Werror -I$(GBN)/include -c bench/gbench_shim.cc"; \
	  "$$z" c++ -target aarch64-macos.12.0 -std=c++17 -O2 -Wall -Wextra -Werror -I$(GBN)/include \
	    -DWX_GBENCH_VERSION='"new"' -c bench/gbench_shim.cc -o $(GBN)/shim-aarch64-macos.12.0.o
	@echo "gbench-new-check: gbench_shim.cc compiles with -Werror against $(GBENCH_NEW_INCLUDE)"

# (the .d files under $(CROSS) are included by the Makefile's own -include of $(B))

# ------------------------------------------------------------ the interposer
# `wxbench trace`'s interposer: a shared library for aarch64 Linux, and a
# dylib (its __interpose section holding the macOS JIT calls) for each macOS
# target, linked; the dylib is checked for the section and the calls.
$(CROSS)/aarch64-linux/libwxtrace.so: bench/interpose/wxtrace.c bench/interpose/wxtrace_format.h
	@mkdir -p $(dir $@)
	$(CROSS_CC) $(CROSS_FLAGS) -fPIC -fvisibility=hidden -shared -o $@ $< -ldl

$(CROSS)/%/libwxtrace.dylib: bench/interpose/wxtrace.c bench/interpose/wxtrace_format.h
	@mkdir -p $(dir $@)
	@test -n "$(ZIG)" || { echo "test-cross: no zig (run tools/install_cross.sh)"; exit 1; }
	$(ZIG) cc -target $* $(CROSS_FLAGS) -fPIC -fvisibility=hidden -c -o $@.o $<
	$(ZIG) cc -target $* -shared -o $@ $@.o
	@tools/check_interposer.sh $@ $*

$(CROSS)/declared-%/libwxtrace.dylib: bench/interpose/wxtrace.c bench/interpose/wxtrace_format.h
	@mkdir -p $(dir $@)
	$(ZIG) cc -target $* $(CROSS_FLAGS) -DWXT_DECLARE_MACH_VM -fPIC -fvisibility=hidden -c -o $@.o $<
	$(ZIG) cc -target $* -shared -o $@ $@.o
	@tools/check_interposer.sh $@ $*

cross-macos-interposer: $(foreach t,$(CROSS_MAC_TARGETS),$(CROSS)/$(t)/libwxtrace.dylib) \
                        $(CROSS)/declared-aarch64-macos.12.0/libwxtrace.dylib
