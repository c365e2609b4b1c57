# Reference VMM: top-level build. `make help` lists the targets.
# Every target first makes sure the Debian packages it needs are installed.
SHELL := /bin/bash
BUILD ?= build
HOST_CC ?= gcc
CROSS ?= aarch64-linux-gnu-
PY ?= /usr/bin/python3
TIER ?= pr
V ?= 0
Q := $(if $(filter 1,$(V)),,@)

SRC := reference-vmm/src
WARN := -Wall -Wextra -Werror
BASE_CFLAGS := -std=gnu11 $(WARN) -O2 -g -D_GNU_SOURCE -pthread \
	-Ireference-vmm/include -I$(SRC) -Imocks -Ireference-vmm/tests/support
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRCS := $(shell find $(SRC) -name '*.c' ! -name main.c | sort)
MAIN_SRC := $(SRC)/core/main.c
MOCK_SRCS := $(sort $(wildcard mocks/*.c))
SUPPORT_SRCS := $(sort $(wildcard reference-vmm/tests/support/*.c))
TEST_SRCS := $(sort $(wildcard reference-vmm/tests/test_*.c))
HDRS := $(shell find reference-vmm mocks -name '*.h')

# host flavour: ASan+UBSan, used by unit tests and the host CLI
HOST_DIR := $(BUILD)/host
HOST_OBJ := $(HOST_DIR)/obj
HOST_LIB_OBJS := $(patsubst %.c,$(HOST_OBJ)/%.o,$(LIB_SRCS))
HOST_TEST_OBJS := $(patsubst %.c,$(HOST_OBJ)/%.o,$(MOCK_SRCS) $(SUPPORT_SRCS))
HOST_TESTS := $(patsubst reference-vmm/tests/%.c,$(HOST_DIR)/tests/%,$(TEST_SRCS))
HOST_VMM := $(HOST_DIR)/vmm

# aarch64 flavour: static, optimised, runs on the board
A64_DIR := $(BUILD)/aarch64
A64_OBJ := $(A64_DIR)/obj
A64_SYSROOT := $(A64_DIR)/sysroot
A64_FDT := $(A64_SYSROOT)/libfdt-dev/usr/lib/aarch64-linux-gnu/libfdt.a
A64_OBJS := $(patsubst %.c,$(A64_OBJ)/%.o,$(LIB_SRCS) $(MAIN_SRC))
A64_VMM := $(A64_DIR)/vmm

DEPS_STAMP := $(BUILD)/.deps-ok

# objects only reached through pattern rules: keep them (make would delete them as
# intermediates, forcing rebuilds and racing concurrent builds)
.SECONDARY: $(HOST_LIB_OBJS) $(HOST_TEST_OBJS) $(A64_OBJS)

.PHONY: all deps host aarch64 unit images test run fuzz fuzz-build bench coverage clean help
all: host aarch64

help:
	@echo "make            build the host VMM + unit tests (ASan/UBSan) and the static aarch64 VMM"
	@echo "make images     build the kernel, guest (L2) and board (L1) images from Debian packages"
	@echo "make test       run the '$(TIER)' tier of tests.json (TIER=nightly|hil|all for others)"
	@echo "make run        boot the default guest inside the emulated aarch64 board"
	@echo "make clean      remove build/ (the download cache in ~/.cache/reference-vmm stays)"

deps: $(DEPS_STAMP)
$(DEPS_STAMP): ci/install-deps.sh
	$(Q)ci/install-deps.sh
	$(Q)mkdir -p $(@D) && touch $@

host: $(HOST_VMM) $(HOST_TESTS)
aarch64: $(A64_VMM)

$(HOST_OBJ)/%.o: %.c $(HDRS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(HOST_CC) $(BASE_CFLAGS) $(SAN) -c $< -o $@

$(HOST_VMM): $(HOST_LIB_OBJS) $(HOST_OBJ)/$(MAIN_SRC:.c=.o)
	@echo "  LD      $@"
	$(Q)$(HOST_CC) $(SAN) -pthread $^ -lfdt -o $@

$(HOST_DIR)/tests/%: reference-vmm/tests/%.c $(HOST_LIB_OBJS) $(HOST_TEST_OBJS) $(HDRS)
	@mkdir -p $(@D)
	@echo "  TEST    $@"
	$(Q)$(HOST_CC) $(BASE_CFLAGS) $(SAN) $< $(HOST_LIB_OBJS) $(HOST_TEST_OBJS) -lcmocka -lfdt -o $@

$(A64_FDT): ci/fetch-debs.sh | $(DEPS_STAMP)
	$(Q)ci/fetch-debs.sh $(A64_SYSROOT) libfdt-dev
	$(Q)touch $@

$(A64_OBJ)/%.o: %.c $(HDRS) $(A64_FDT)
	@mkdir -p $(@D)
	@echo "  CC64    $<"
	$(Q)$(CROSS)gcc $(BASE_CFLAGS) -I$(A64_SYSROOT)/libfdt-dev/usr/include -c $< -o $@

$(A64_VMM): $(A64_OBJS) $(A64_FDT)
	@echo "  LD64    $@"
	$(Q)$(CROSS)gcc -static -pthread $(A64_OBJS) $(A64_FDT) -o $@

unit: $(HOST_TESTS)
	$(Q)for t in $(HOST_TESTS); do echo "== $$t"; $$t || exit 1; done

images: $(A64_VMM)
	$(Q)images/build.sh

test: all images
	$(Q)$(PY) ci/run_tests.py --tier $(TIER) --build-dir $(BUILD) --junit-dir $(BUILD)/junit

run: $(A64_VMM) images
	$(Q)images/run-board.sh --autorun

clean:
	rm -rf $(BUILD)

include fuzz/fuzz.mk
include bench/bench.mk
include ci/coverage.mk
