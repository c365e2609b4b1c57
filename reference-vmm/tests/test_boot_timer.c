/* Unit tests for devices/boot_timer.c with an injected clock: the log line a guest
 * write produces, and the little-endian elapsed-µs value reads return. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/aarch64/layout.h"
#include "core/bus.h"
#include "devices/boot_timer.h"
#include "unit_helpers.h"

#include <stdlib.h>
#include <string.h>

#define START_NS 5000000000ULL /* the VMM started 5 s into the fake clock */

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

struct ctx {
	struct unit_log_capture cap;
	struct boot_timer bt;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	if (!c || unit_log_capture_open(&c->cap, LOG_INFO) < 0)
		return -1;
	fake_now = START_NS;
	boot_timer_init(&c->bt, &c->cap.log, START_NS, fake_clock);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	unit_log_capture_close(&c->cap);
	free(c);
	return 0;
}

static void signal_guest(struct ctx *c)
{
	const uint8_t magic = 123;
	boot_timer_bus_ops.write(&c->bt, 0, &magic, 1);
}

static uint64_t read_u64(struct ctx *c, uint64_t off, unsigned int len)
{
	uint8_t d[8];
	memset(d, 0xee, sizeof(d));
	boot_timer_bus_ops.read(&c->bt, off, d, len);
	uint64_t v = 0;
	for (unsigned int i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

static void test_write_logs_elapsed(void **state)
{
	struct ctx *c = *state;
	fake_now = START_NS + 1234567890ULL; /* 1234.567890 ms → 1234567 µs */
	signal_guest(c);
	assert_string_equal(unit_log_capture_text(&c->cap),
			    "vmm: info: boot-timer: guest signalled after 1234.567 ms\n");
	assert_int_equal(c->bt.hits, 1);
	assert_int_equal(c->bt.last_ms_x1000, 1234567);
}

static void test_write_formats(void **state)
{
	struct ctx *c = *state;
	static const struct {
		uint64_t ns;
		const char *ms;
	} cases[] = {
		{ 5000, "0.005" },
		{ 999000, "0.999" },
		{ 1000000, "1.000" },
		{ 1000999, "1.000" },
		{ 20050000, "20.050" },
		{ 3600000000000ULL, "3600000.000" },
		{ 999, "0.000" },
	};
	char want[4096] = "";
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_now = START_NS + cases[i].ns;
		signal_guest(c);
		size_t n = strlen(want);
		snprintf(want + n, sizeof(want) - n,
			 "vmm: info: boot-timer: guest signalled after %s ms\n", cases[i].ms);
	}
	assert_string_equal(unit_log_capture_text(&c->cap), want);
	assert_int_equal(c->bt.hits, sizeof(cases) / sizeof(cases[0]));
}

static void test_write_zero_and_backwards(void **state)
{
	struct ctx *c = *state;
	/* no time at all: 0.000 ms, yet "reported" (last != 0) */
	signal_guest(c);
	assert_string_equal(unit_log_capture_text(&c->cap),
			    "vmm: info: boot-timer: guest signalled after 0.000 ms\n");
	assert_int_equal(c->bt.hits, 1);
	assert_true(c->bt.last_ms_x1000 != 0);
	/* a clock before the start time counts as 0, never wraps to a huge value */
	fake_now = START_NS - 1000000;
	assert_int_equal(read_u64(c, 0, 8), 0);
	signal_guest(c);
	assert_non_null(strstr(unit_log_capture_text(&c->cap), "after 0.000 ms\n"));
	assert_int_equal(c->bt.hits, 2);
}

static void test_write_any_offset_len(void **state)
{
	struct ctx *c = *state;
	fake_now = START_NS + 2000000;
	const uint8_t d[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	boot_timer_bus_ops.write(&c->bt, 0, d, 4);
	boot_timer_bus_ops.write(&c->bt, 0xffc, d, 8);
	boot_timer_bus_ops.write(&c->bt, 3, d, 2);
	assert_int_equal(c->bt.hits, 3);
	const char *t = unit_log_capture_text(&c->cap);
	const char *line = "vmm: info: boot-timer: guest signalled after 2.000 ms\n";
	assert_int_equal(strlen(t), 3 * strlen(line));
	for (int i = 0; i < 3; i++)
		assert_memory_equal(t + i * strlen(line), line, strlen(line));
}

static void test_log_level_filters(void **state)
{
	(void)state;
	struct unit_log_capture cap;
	assert_int_equal(unit_log_capture_open(&cap, LOG_WARN), 0);
	struct boot_timer bt;
	boot_timer_init(&bt, &cap.log, START_NS, fake_clock);
	fake_now = START_NS + 7000000;
	const uint8_t b = 1;
	boot_timer_bus_ops.write(&bt, 0, &b, 1);
	assert_string_equal(unit_log_capture_text(&cap), ""); /* info is below warn */
	assert_int_equal(bt.hits, 1);
	assert_int_equal(bt.last_ms_x1000, 7000);
	unit_log_capture_close(&cap);
}

static void test_read_elapsed_le(void **state)
{
	struct ctx *c = *state;
	uint64_t us = 0x123456789aULL; /* > 32 bits */
	fake_now = START_NS + us * 1000 + 999;
	assert_int_equal(read_u64(c, 0, 8), us);
	assert_int_equal(read_u64(c, 0, 4), 0x3456789aULL);
	assert_int_equal(read_u64(c, 4, 4), 0x12ULL);
	assert_int_equal(read_u64(c, 0, 2), 0x789aULL);
	assert_int_equal(read_u64(c, 0, 1), 0x9aULL);
	assert_int_equal(read_u64(c, 3, 1), 0x34ULL);
	assert_int_equal(read_u64(c, 4, 1), 0x12ULL);
	/* the byte order in memory is little-endian */
	uint8_t d[8];
	boot_timer_bus_ops.read(&c->bt, 0, d, 8);
	const uint8_t want[8] = { 0x9a, 0x78, 0x56, 0x34, 0x12, 0, 0, 0 };
	assert_memory_equal(d, want, 8);
	/* reads straddling the end of the 8-byte value: zero beyond */
	assert_int_equal(read_u64(c, 4, 8), 0x12ULL);
	assert_int_equal(read_u64(c, 6, 4), 0);
	/* past the value: zero */
	assert_int_equal(read_u64(c, 8, 8), 0);
	assert_int_equal(read_u64(c, 0xff8, 8), 0);
	/* reads log nothing and are not hits */
	assert_string_equal(unit_log_capture_text(&c->cap), "");
	assert_int_equal(c->bt.hits, 0);
	/* it tracks the clock */
	fake_now += 5000;
	assert_int_equal(read_u64(c, 0, 8), us + 5);
}

static void test_through_bus(void **state)
{
	struct ctx *c = *state;
	struct bus bus;
	bus_init(&bus);
	assert_int_equal(bus_register(&bus, A64_BOOT_TIMER_BASE, A64_BOOT_TIMER_SIZE,
				      &boot_timer_bus_ops, &c->bt, "boot-timer"),
			 0);
	fake_now = START_NS + 42000000;
	uint8_t d[8];
	assert_int_equal(bus_read(&bus, A64_BOOT_TIMER_BASE, d, 8), 0);
	assert_int_equal(d[0] | d[1] << 8 | d[2] << 16, 42000);
	const uint8_t magic = 123;
	assert_int_equal(bus_write(&bus, A64_BOOT_TIMER_BASE, &magic, 1), 0);
	assert_string_equal(unit_log_capture_text(&c->cap),
			    "vmm: info: boot-timer: guest signalled after 42.000 ms\n");
}

static void test_real_clock(void **state)
{
	(void)state;
	/* now_ns NULL → CLOCK_MONOTONIC, same clock as boot_timer_monotonic_ns() */
	uint64_t t0 = boot_timer_monotonic_ns();
	assert_true(t0 > 0);
	assert_true(unit_now_ns() >= t0);
	struct boot_timer bt;
	boot_timer_init(&bt, NULL, t0, NULL);
	unit_sleep_ms(20);
	uint8_t d[8];
	boot_timer_bus_ops.read(&bt, 0, d, 8);
	uint64_t us = 0;
	for (int i = 0; i < 8; i++)
		us |= (uint64_t)d[i] << (8 * i);
	assert_in_range(us, 20000, 20000000);
	assert_true(boot_timer_monotonic_ns() >= t0 + 20000000ULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_write_logs_elapsed),
		T(test_write_formats),
		T(test_write_zero_and_backwards),
		T(test_write_any_offset_len),
		cmocka_unit_test(test_log_level_filters),
		T(test_read_elapsed_le),
		T(test_through_bus),
		cmocka_unit_test(test_real_clock),
	};
	return cmocka_run_group_tests_name("boot_timer", tests, NULL, NULL);
}
