# Benchmark rules, included at the end of the top-level Makefile (which defines BUILD,
# HOST_CC, BASE_CFLAGS, LIB_SRCS, MOCK_SRCS, HDRS, DEPS_STAMP, PY...). docs/testing.md,
# "Benchmarks and coverage".
#
#   make bench-build  host micro-benchmarks build/bench/bench_<x> (gcc -O2, no sanitizers)
#   make bench-host   run them through ci/run_tests.py -v (entry bench_host): table + bench/targets.json check
#   make bench        bench_host + bench_board (L2 boot, VMM startup, virtio-blk throughput on the
#                     emulated board: needs qemu-system-aarch64 and `make images`)
# A new host benchmark is just bench/bench_<name>.c printing BENCH lines (bench/bench.h) plus
# its metrics in bench/targets.json: the rules below and bench/bench.py pick it up by name.

BENCH_DIR := $(BUILD)/bench
BENCH_OBJ := $(BENCH_DIR)/obj
BENCH_SRCS := $(sort $(wildcard bench/bench_*.c))
BENCH_BINS := $(patsubst bench/%.c,$(BENCH_DIR)/%,$(BENCH_SRCS))
BENCH_HDRS := $(wildcard bench/*.h)
# the library without sanitizers, plus the driver-side queue builder and mock KVM
BENCH_CFLAGS := $(BASE_CFLAGS) -Ibench
BENCH_OBJS := $(patsubst %.c,$(BENCH_OBJ)/%.o,$(LIB_SRCS) $(MOCK_SRCS) \
	reference-vmm/tests/support/vq_builder.c bench/harness.c)

.SECONDARY: $(BENCH_OBJS)
.PHONY: bench-build bench-host

# built by `make` so that `make test TIER=nightly` finds them (the runner builds nothing)
all: bench-build
bench-build: $(BENCH_BINS)

$(BENCH_OBJS): $(BENCH_OBJ)/%.o: %.c $(HDRS) $(BENCH_HDRS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC-BENCH $<"
	$(Q)$(HOST_CC) $(BENCH_CFLAGS) -c $< -o $@

$(BENCH_BINS): $(BENCH_DIR)/%: bench/%.c $(BENCH_OBJS) $(HDRS) $(BENCH_HDRS)
	@mkdir -p $(@D)
	@echo "  BENCH   $@"
	$(Q)$(HOST_CC) $(BENCH_CFLAGS) $< $(BENCH_OBJS) -lfdt -pthread -o $@

bench-host: bench-build
	$(Q)$(PY) ci/run_tests.py -v --only bench_host --build-dir $(BUILD) --junit-dir $(BUILD)/junit

bench: bench-build images
	$(Q)$(PY) ci/run_tests.py -v --only bench_host bench_board --build-dir $(BUILD) \
		--junit-dir $(BUILD)/junit
