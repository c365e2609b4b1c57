# `make coverage`: line coverage of the VMM sources (reference-vmm/src/) by the cmocka unit
# tests. Included at the end of the top-level Makefile (which defines BUILD, HOST_CC,
# BASE_CFLAGS, LIB_SRCS, MOCK_SRCS, SUPPORT_SRCS, TEST_SRCS, HDRS, DEPS_STAMP).
# docs/testing.md, "Benchmarks and coverage".
#
#   build/coverage/obj/         gcc --coverage -O0 objects (+ .gcno, and .gcda after a run)
#   build/coverage/tests/       the unit tests linked against them (no sanitizers)
#   build/coverage/html/index.html     per-file report with annotated sources (gcovr)
#   build/coverage/coverage.txt        the same as text; coverage-summary.json for tools
# The unit tests run from the repository root, one after the other, on fresh counters. A
# failing test fails the target after the report is written. (The libFuzzer corpora have
# their own coverage: `make fuzz-coverage`.)

UCOV_DIR := $(BUILD)/coverage
UCOV_OBJ := $(UCOV_DIR)/obj
# -O0 for exact line counts; -Werror off: -O0 changes what gcc warns about, and `make` already
# enforces the warnings on the real build
UCOV_CFLAGS := $(filter-out -O2 -Werror,$(BASE_CFLAGS)) -O0 --coverage
UCOV_OBJS := $(patsubst %.c,$(UCOV_OBJ)/%.o,$(LIB_SRCS) $(MOCK_SRCS) $(SUPPORT_SRCS))
UCOV_TESTS := $(patsubst reference-vmm/tests/%.c,$(UCOV_DIR)/tests/%,$(TEST_SRCS))
UCOV_GCOVR := gcovr -r . --object-directory $(UCOV_OBJ) --filter 'reference-vmm/src/'

.SECONDARY: $(UCOV_OBJS)
.PHONY: coverage-build

coverage-build: $(UCOV_TESTS)

$(UCOV_OBJS): $(UCOV_OBJ)/%.o: %.c $(HDRS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC-COV  $<"
	$(Q)$(HOST_CC) $(UCOV_CFLAGS) -c $< -o $@

$(UCOV_TESTS): $(UCOV_DIR)/tests/%: reference-vmm/tests/%.c $(UCOV_OBJS) $(HDRS)
	@mkdir -p $(@D) $(UCOV_OBJ)/tests
	@echo "  TEST-COV $@"
	$(Q)$(HOST_CC) $(UCOV_CFLAGS) -c $< -o $(UCOV_OBJ)/tests/$*.o
	$(Q)$(HOST_CC) --coverage -pthread $(UCOV_OBJ)/tests/$*.o $(UCOV_OBJS) -lcmocka -lfdt -o $@

coverage: $(UCOV_TESTS)
	$(Q)command -v gcovr >/dev/null || { echo "coverage: gcovr is missing (Debian package" \
		"gcovr; ci/install-deps.sh installs it)"; exit 1; }
	$(Q)find $(UCOV_OBJ) -name '*.gcda' -delete
	$(Q)rm -rf $(UCOV_DIR)/html && mkdir -p $(UCOV_DIR)/html
	$(Q)failed=""; for t in $(UCOV_TESTS); do \
		n=$$(basename $$t); \
		if $$t >$(UCOV_DIR)/$$n.log 2>&1; then echo "  RUN     $$n ok"; \
		else echo "  RUN     $$n FAILED (log: $(UCOV_DIR)/$$n.log)"; failed="$$failed $$n"; fi; \
	done; \
	$(UCOV_GCOVR) --html-details $(UCOV_DIR)/html/index.html \
		--html-title "reference-vmm: line coverage by the unit tests" \
		--txt $(UCOV_DIR)/coverage.txt --json-summary-pretty \
		--json-summary $(UCOV_DIR)/coverage-summary.json $(UCOV_OBJ) || exit 1; \
	sed -n '/^File/,$$p' $(UCOV_DIR)/coverage.txt | \
		awk '/^File/ { printf "%-44s %6s %6s %6s\n", "File", "Lines", "Exec", "Cover"; next } /^-+$$/ { print; next } NF >= 4 && $$4 ~ /%$$/ { printf "%-44s %6s %6s %6s\n", $$1, $$2, $$3, $$4; next } \
			NF == 1 { f = $$1; next } NF >= 3 && $$3 ~ /%$$/ { printf "%-44s %6s %6s %6s\n", f, $$1, $$2, $$3 }'; \
	echo "coverage: $(UCOV_DIR)/html/index.html (per file, annotated sources), $(UCOV_DIR)/coverage.txt"; \
	if [ -n "$$failed" ]; then echo "coverage: unit tests failed:$$failed"; exit 1; fi
