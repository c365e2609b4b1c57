# Fuzzing rules, included at the end of the top-level Makefile (which defines
# BUILD, HOST_*, LIB_SRCS, BASE_CFLAGS, SAN, WARN, DEPS_STAMP...). docs/fuzzing.md.
#
#   make fuzz-replay-build  gcc + ASan/UBSan replay binaries build/host/fuzz/fuzz_<t>
#                           (part of `make all`: tests.json runs them on the corpora)
#   make fuzz-replay        run every replay binary on fuzz/corpus/<t> + fuzz/regressions/<t>
#   make fuzz-build         clang libFuzzer builds build/fuzz/libfuzzer/fuzz_<t> (runs nothing)
#   make fuzz-cov-build     clang source-coverage builds build/fuzz/cov/fuzz_<t> (replay driver)
#   make fuzz               FUZZ_SECONDS (60) per target, FUZZ_JOBS (1), via fuzz/nightly.sh
#   make fuzz-nightly       FUZZ_HOURS (8) in total, FUZZ_JOBS (nproc), merge, report, coverage
#   make fuzz-coverage      line coverage reached by the committed corpora only
#   make fuzz-corpus        regenerate the seed files from fuzz/tools/gen_corpus.py
# FUZZ_TARGETS="fuzz_virtq fuzz_cli" restricts fuzz / fuzz-nightly / fuzz-coverage.
# A new target is just fuzz/targets/fuzz_<name>.c: the rules below pick it up by name.

FUZZ_ALL_TARGETS := $(sort $(patsubst fuzz/targets/%.c,%,$(wildcard fuzz/targets/fuzz_*.c)))
FUZZ_TARGETS ?= $(FUZZ_ALL_TARGETS)
FUZZ_SECONDS ?= 60
FUZZ_HOURS ?= 8
FUZZ_JOBS ?= 1
FUZZ_NIGHTLY_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
FUZZ_CC ?= clang

FUZZ_SUPPORT_SRCS := $(sort $(wildcard fuzz/support/*.c))
FUZZ_HDRS := $(wildcard fuzz/support/*.h)
# the production code under test plus the driver-side queue builder (not copied)
FUZZ_LIB_SRCS := $(LIB_SRCS) reference-vmm/tests/support/vq_builder.c
FUZZ_INC := -Ifuzz/support
FUZZ_LIBS := -lfdt -pthread

# --- replay flavour: gcc, ASan+UBSan, the host objects of the main build -------------
REPLAY_DIR := $(HOST_DIR)/fuzz
REPLAY_BINS := $(addprefix $(REPLAY_DIR)/,$(FUZZ_ALL_TARGETS))
REPLAY_OBJS := $(HOST_LIB_OBJS) $(HOST_OBJ)/reference-vmm/tests/support/vq_builder.o \
	$(patsubst %.c,$(HOST_OBJ)/%.o,$(FUZZ_SUPPORT_SRCS) fuzz/replay_main.c)

.SECONDARY: $(REPLAY_OBJS)
.PHONY: fuzz-replay-build fuzz-replay fuzz-build fuzz-cov-build fuzz-nightly fuzz-coverage \
	fuzz-corpus

all: fuzz-replay-build
fuzz-replay-build: $(REPLAY_BINS)

$(HOST_OBJ)/fuzz/%.o: fuzz/%.c $(HDRS) $(FUZZ_HDRS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(HOST_CC) $(BASE_CFLAGS) $(SAN) $(FUZZ_INC) -c $< -o $@

$(REPLAY_DIR)/%: fuzz/targets/%.c $(REPLAY_OBJS) $(HDRS) $(FUZZ_HDRS)
	@mkdir -p $(@D)
	@echo "  REPLAY  $@"
	$(Q)$(HOST_CC) $(BASE_CFLAGS) $(SAN) $(FUZZ_INC) $< $(REPLAY_OBJS) $(FUZZ_LIBS) -o $@

fuzz-replay: fuzz-replay-build
	$(Q)for t in $(FUZZ_ALL_TARGETS); do \
		$(REPLAY_DIR)/$$t fuzz/corpus/$$t fuzz/regressions/$$t || exit 1; done

# --- libFuzzer flavour: clang, -fsanitize=fuzzer,address,undefined --------------------
LF_DIR := $(BUILD)/fuzz/libfuzzer
LF_CFLAGS := $(filter-out -Werror,$(BASE_CFLAGS)) $(FUZZ_INC) -fno-omit-frame-pointer \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
LF_OBJS := $(patsubst %.c,$(LF_DIR)/obj/%.o,$(FUZZ_LIB_SRCS) $(FUZZ_SUPPORT_SRCS))

.SECONDARY: $(LF_OBJS)
fuzz-build: $(addprefix $(LF_DIR)/,$(FUZZ_ALL_TARGETS))

$(LF_DIR)/obj/%.o: %.c $(HDRS) $(FUZZ_HDRS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC-FUZZ $<"
	$(Q)$(FUZZ_CC) $(LF_CFLAGS) -c $< -o $@

$(LF_DIR)/%: fuzz/targets/%.c $(LF_OBJS) $(HDRS) $(FUZZ_HDRS)
	@mkdir -p $(@D)
	@echo "  FUZZER  $@"
	$(Q)$(FUZZ_CC) $(LF_CFLAGS) -fsanitize=fuzzer $< $(LF_OBJS) $(FUZZ_LIBS) -o $@

# --- coverage flavour: clang source-based coverage, replay driver ---------------------
COV_DIR := $(BUILD)/fuzz/cov
COV_CFLAGS := $(filter-out -Werror -O2,$(BASE_CFLAGS)) $(FUZZ_INC) -O1 \
	-fprofile-instr-generate -fcoverage-mapping
COV_OBJS := $(patsubst %.c,$(COV_DIR)/obj/%.o,$(FUZZ_LIB_SRCS) $(FUZZ_SUPPORT_SRCS) \
	fuzz/replay_main.c)

.SECONDARY: $(COV_OBJS)
fuzz-cov-build: $(addprefix $(COV_DIR)/,$(FUZZ_ALL_TARGETS))

$(COV_DIR)/obj/%.o: %.c $(HDRS) $(FUZZ_HDRS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC-COV  $<"
	$(Q)$(FUZZ_CC) $(COV_CFLAGS) -c $< -o $@

$(COV_DIR)/%: fuzz/targets/%.c $(COV_OBJS) $(HDRS) $(FUZZ_HDRS)
	@mkdir -p $(@D)
	@echo "  COV     $@"
	$(Q)$(FUZZ_CC) $(COV_CFLAGS) $< $(COV_OBJS) $(FUZZ_LIBS) -o $@

# --- runs ------------------------------------------------------------------------------
fuzz: fuzz-build fuzz-cov-build
	$(Q)fuzz/nightly.sh --no-build --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS) \
		--targets "$(FUZZ_TARGETS)" --build-dir $(BUILD)

fuzz-nightly: fuzz-build fuzz-cov-build
	$(Q)fuzz/nightly.sh --no-build --hours $(FUZZ_HOURS) --jobs $(FUZZ_NIGHTLY_JOBS) \
		--targets "$(FUZZ_TARGETS)" --build-dir $(BUILD)

fuzz-coverage: fuzz-cov-build
	$(Q)fuzz/nightly.sh --no-build --coverage-only --targets "$(FUZZ_TARGETS)" \
		--build-dir $(BUILD)

fuzz-corpus:
	$(Q)$(PY) fuzz/tools/gen_corpus.py
