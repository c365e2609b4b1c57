/* Unit tests for core/guest_mem.c: region table (add, overlap, ENOSPC) and the
 * bounds-checked GPA → host translation (edges, len 0, wrap-around, EFAULT). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/guest_mem.h"

#include <errno.h>
#include <string.h>

#define RAM_A 0x40000000ULL
#define SIZE_A 0x10000ULL
#define RAM_B 0x80000000ULL
#define SIZE_B 0x2000ULL

static uint8_t host_a[SIZE_A];
static uint8_t host_b[SIZE_B];

static void two_regions(struct guest_mem *gm)
{
	guest_mem_init(gm);
	assert_int_equal(guest_mem_add(gm, RAM_A, SIZE_A, host_a), 0);
	assert_int_equal(guest_mem_add(gm, RAM_B, SIZE_B, host_b), 0);
}

static void test_init_empty(void **state)
{
	(void)state;
	struct guest_mem gm;
	memset(&gm, 0xa5, sizeof(gm));
	guest_mem_init(&gm);
	assert_int_equal(gm.nr_regions, 0);
	assert_int_equal(guest_mem_total(&gm), 0);
	assert_null(guest_mem_ptr(&gm, 0, 1));
	assert_null(guest_mem_ptr(&gm, 0, 0));
	assert_null(guest_mem_ptr(&gm, RAM_A, 0));
}

static void test_add_and_total(void **state)
{
	(void)state;
	struct guest_mem gm;
	two_regions(&gm);
	assert_int_equal(gm.nr_regions, 2);
	assert_int_equal(guest_mem_total(&gm), SIZE_A + SIZE_B);
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_A, 1), host_a);
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_B, 1), host_b);
}

static void test_add_invalid(void **state)
{
	(void)state;
	struct guest_mem gm;
	guest_mem_init(&gm);
	assert_int_equal(guest_mem_add(&gm, RAM_A, 0, host_a), -EINVAL);
	assert_int_equal(guest_mem_add(&gm, RAM_A, SIZE_A, NULL), -EINVAL);
	/* gpa + size wraps past 2^64 */
	assert_int_equal(guest_mem_add(&gm, UINT64_MAX - 0xfff, 0x2000, host_a), -EINVAL);
	assert_int_equal(guest_mem_add(&gm, UINT64_MAX, 2, host_a), -EINVAL);
	assert_int_equal(guest_mem_add(&gm, 1, UINT64_MAX, host_a), -EINVAL);
	assert_int_equal(gm.nr_regions, 0);
	/* a region ending just below 2^64 is fine */
	assert_int_equal(guest_mem_add(&gm, UINT64_MAX - 0x1000, 0x1000, host_b), 0);
	assert_ptr_equal(guest_mem_ptr(&gm, UINT64_MAX - 1, 1), host_b + 0xfff);
}

static void test_add_overlap(void **state)
{
	(void)state;
	struct guest_mem gm;
	guest_mem_init(&gm);
	assert_int_equal(guest_mem_add(&gm, RAM_A, SIZE_A, host_a), 0);
	/* identical, contained, containing, straddling either edge */
	assert_int_equal(guest_mem_add(&gm, RAM_A, SIZE_A, host_b), -EEXIST);
	assert_int_equal(guest_mem_add(&gm, RAM_A + 0x100, 0x100, host_b), -EEXIST);
	assert_int_equal(guest_mem_add(&gm, RAM_A - 0x1000, SIZE_A + 0x2000, host_b), -EEXIST);
	assert_int_equal(guest_mem_add(&gm, RAM_A - 0x1000, 0x1001, host_b), -EEXIST);
	assert_int_equal(guest_mem_add(&gm, RAM_A + SIZE_A - 1, 0x1000, host_b), -EEXIST);
	assert_int_equal(guest_mem_add(&gm, RAM_A + SIZE_A - 1, 1, host_b), -EEXIST);
	assert_int_equal(gm.nr_regions, 1);
	/* touching either end is not an overlap */
	assert_int_equal(guest_mem_add(&gm, RAM_A - 0x1000, 0x1000, host_b), 0);
	assert_int_equal(guest_mem_add(&gm, RAM_A + SIZE_A, 0x1000, host_b + 0x1000), 0);
	assert_int_equal(gm.nr_regions, 3);
	assert_int_equal(guest_mem_total(&gm), SIZE_A + 0x2000);
}

static void test_add_enospc(void **state)
{
	(void)state;
	struct guest_mem gm;
	guest_mem_init(&gm);
	for (unsigned int i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
		assert_int_equal(guest_mem_add(&gm, 0x100000ULL * i, 0x1000, host_a), 0);
	assert_int_equal(gm.nr_regions, GUEST_MEM_MAX_REGIONS);
	assert_int_equal(guest_mem_add(&gm, 0x10000000ULL, 0x1000, host_a), -ENOSPC);
	assert_int_equal(gm.nr_regions, GUEST_MEM_MAX_REGIONS);
	/* the full table still translates all its regions */
	for (unsigned int i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
		assert_ptr_equal(guest_mem_ptr(&gm, 0x100000ULL * i + 0xfff, 1), host_a + 0xfff);
}

static void test_translate_edges(void **state)
{
	(void)state;
	struct guest_mem gm;
	two_regions(&gm);
	/* first byte, last byte, whole region */
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_A, 1), host_a);
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_A + SIZE_A - 1, 1), host_a + SIZE_A - 1);
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_A, SIZE_A), host_a);
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_A + 8, SIZE_A - 8), host_a + 8);
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_B + SIZE_B - 8, 8), host_b + SIZE_B - 8);
	/* one byte too many, straddling the end, starting past the end, below the start */
	assert_null(guest_mem_ptr(&gm, RAM_A, SIZE_A + 1));
	assert_null(guest_mem_ptr(&gm, RAM_A + SIZE_A - 1, 2));
	assert_null(guest_mem_ptr(&gm, RAM_A + SIZE_A, 1));
	assert_null(guest_mem_ptr(&gm, RAM_A - 1, 1));
	assert_null(guest_mem_ptr(&gm, RAM_A - 1, 2));
	assert_null(guest_mem_ptr(&gm, RAM_B + SIZE_B, 4));
	/* the gap between the regions, and a range spanning both */
	assert_null(guest_mem_ptr(&gm, RAM_A + SIZE_A + 0x1000, 1));
	assert_null(guest_mem_ptr(&gm, RAM_A, RAM_B + SIZE_B - RAM_A));
	assert_null(guest_mem_ptr(&gm, 0, 1));
	assert_null(guest_mem_ptr(&gm, UINT64_MAX, 1));
}

static void test_translate_adjacent_regions(void **state)
{
	(void)state;
	/* two regions back to back are still two regions: an access may not span them */
	static uint8_t lo[0x1000], hi[0x1000];
	struct guest_mem gm;
	guest_mem_init(&gm);
	assert_int_equal(guest_mem_add(&gm, 0x1000, 0x1000, lo), 0);
	assert_int_equal(guest_mem_add(&gm, 0x2000, 0x1000, hi), 0);
	assert_ptr_equal(guest_mem_ptr(&gm, 0x1fff, 1), lo + 0xfff);
	assert_ptr_equal(guest_mem_ptr(&gm, 0x2000, 1), hi);
	assert_null(guest_mem_ptr(&gm, 0x1ffc, 8));
	assert_null(guest_mem_ptr(&gm, 0x1000, 0x2000));
}

static void test_translate_len_zero(void **state)
{
	(void)state;
	struct guest_mem gm;
	two_regions(&gm);
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_A, 0), host_a);
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_A + 0x123, 0), host_a + 0x123);
	/* at the end of a region: valid (documented) */
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_A + SIZE_A, 0), host_a + SIZE_A);
	assert_ptr_equal(guest_mem_ptr(&gm, RAM_B + SIZE_B, 0), host_b + SIZE_B);
	/* past the end or outside every region: not valid */
	assert_null(guest_mem_ptr(&gm, RAM_A + SIZE_A + 1, 0));
	assert_null(guest_mem_ptr(&gm, RAM_A - 1, 0));
	assert_null(guest_mem_ptr(&gm, 0, 0));
	assert_null(guest_mem_ptr(&gm, UINT64_MAX, 0));
}

static void test_translate_overflow(void **state)
{
	(void)state;
	struct guest_mem gm;
	two_regions(&gm);
	/* gpa + len wraps around to land inside (or before) a region */
	uint64_t gpa = RAM_B + 0x10;
	assert_null(guest_mem_ptr(&gm, gpa, UINT64_MAX));
	assert_null(guest_mem_ptr(&gm, gpa, UINT64_MAX - gpa + 1 + 0x20)); /* wraps to 0x20 */
	assert_null(guest_mem_ptr(&gm, gpa, (UINT64_MAX - gpa) + 1 + RAM_A + 4));
	assert_null(guest_mem_ptr(&gm, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&gm, UINT64_MAX - 3, 8));
	/* huge but not wrapping */
	assert_null(guest_mem_ptr(&gm, RAM_A, UINT64_MAX - RAM_A));
	assert_null(guest_mem_ptr(&gm, RAM_A, 1ULL << 63));

	/* a region at the very top of the address space */
	static uint8_t top[0x1000];
	assert_int_equal(guest_mem_add(&gm, UINT64_MAX - 0x1000, 0x1000, top), 0);
	assert_ptr_equal(guest_mem_ptr(&gm, UINT64_MAX - 0x1000, 0x1000), top);
	assert_ptr_equal(guest_mem_ptr(&gm, UINT64_MAX - 1, 1), top + 0xfff);
	assert_null(guest_mem_ptr(&gm, UINT64_MAX - 1, 2));
	assert_null(guest_mem_ptr(&gm, UINT64_MAX - 0x800, UINT64_MAX));
	assert_null(guest_mem_ptr(&gm, UINT64_MAX - 0x800, 0x801 + RAM_A)); /* wraps into RAM_A */
}

static void test_read_write(void **state)
{
	(void)state;
	struct guest_mem gm;
	two_regions(&gm);
	memset(host_a, 0, sizeof(host_a));
	const uint8_t msg[] = "hello, guest";
	assert_int_equal(guest_mem_write(&gm, RAM_A + SIZE_A - sizeof(msg), msg, sizeof(msg)), 0);
	assert_memory_equal(host_a + SIZE_A - sizeof(msg), msg, sizeof(msg));
	uint8_t back[sizeof(msg)];
	memset(back, 0, sizeof(back));
	assert_int_equal(guest_mem_read(&gm, RAM_A + SIZE_A - sizeof(msg), back, sizeof(back)), 0);
	assert_memory_equal(back, msg, sizeof(msg));
	/* len 0 at the end is fine and touches nothing */
	assert_int_equal(guest_mem_read(&gm, RAM_A + SIZE_A, back, 0), 0);
	assert_int_equal(guest_mem_write(&gm, RAM_A + SIZE_A, msg, 0), 0);
}

static void test_read_write_efault(void **state)
{
	(void)state;
	struct guest_mem gm;
	two_regions(&gm);
	memset(host_a, 0x11, sizeof(host_a));
	uint8_t buf[16];
	memset(buf, 0x77, sizeof(buf));
	/* straddles the end: nothing copied either way */
	assert_int_equal(guest_mem_read(&gm, RAM_A + SIZE_A - 8, buf, 16), -EFAULT);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0x77);
	assert_int_equal(guest_mem_write(&gm, RAM_A + SIZE_A - 8, buf, 16), -EFAULT);
	for (size_t i = SIZE_A - 8; i < SIZE_A; i++)
		assert_int_equal(host_a[i], 0x11);
	/* unmapped, wrap-around */
	assert_int_equal(guest_mem_read(&gm, 0x1000, buf, 4), -EFAULT);
	assert_int_equal(guest_mem_write(&gm, 0x1000, buf, 4), -EFAULT);
	assert_int_equal(guest_mem_read(&gm, UINT64_MAX - 1, buf, 4), -EFAULT);
	assert_int_equal(guest_mem_write(&gm, UINT64_MAX - 1, buf, 4), -EFAULT);
	assert_int_equal(guest_mem_read(&gm, RAM_A, buf, UINT64_MAX), -EFAULT);
	assert_int_equal(guest_mem_write(&gm, RAM_A, buf, UINT64_MAX), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_empty),
		cmocka_unit_test(test_add_and_total),
		cmocka_unit_test(test_add_invalid),
		cmocka_unit_test(test_add_overlap),
		cmocka_unit_test(test_add_enospc),
		cmocka_unit_test(test_translate_edges),
		cmocka_unit_test(test_translate_adjacent_regions),
		cmocka_unit_test(test_translate_len_zero),
		cmocka_unit_test(test_translate_overflow),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_read_write_efault),
	};
	return cmocka_run_group_tests_name("guest_mem", tests, NULL, NULL);
}
