/* Unit tests for core/bus.c: range registration (overlap, wrap, ENOSPC), lookup,
 * and dispatch of reads/writes with device-relative offsets and length checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/bus.h"

#include <errno.h>
#include <string.h>

/* A device that records its last access; reads return (tag + off + i) per byte. */
struct fake_dev {
	uint8_t tag;
	unsigned int reads, writes;
	uint64_t last_off;
	unsigned int last_len;
	uint8_t last_data[8];
};

static void fake_read(void *dev, uint64_t off, uint8_t *data, unsigned int len)
{
	struct fake_dev *d = dev;
	d->reads++;
	d->last_off = off;
	d->last_len = len;
	for (unsigned int i = 0; i < len; i++)
		data[i] = (uint8_t)(d->tag + off + i);
}

static void fake_write(void *dev, uint64_t off, const uint8_t *data, unsigned int len)
{
	struct fake_dev *d = dev;
	d->writes++;
	d->last_off = off;
	d->last_len = len;
	memset(d->last_data, 0, sizeof(d->last_data));
	memcpy(d->last_data, data, len < 8 ? len : 8);
}

static const struct bus_device_ops fake_ops = { .read = fake_read, .write = fake_write };
static const struct bus_device_ops no_read_ops = { .read = NULL, .write = fake_write };
static const struct bus_device_ops no_write_ops = { .read = fake_read, .write = NULL };

#define BASE_A 0x09000000ULL
#define SIZE_A 0x1000ULL
#define BASE_B 0x0b000000ULL
#define SIZE_B 0x100ULL

static void test_register_invalid(void **state)
{
	(void)state;
	struct bus bus;
	struct fake_dev d = { 0 };
	bus_init(&bus);
	assert_int_equal(bus_register(&bus, BASE_A, 0, &fake_ops, &d, "a"), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX - 0xff, 0x200, &fake_ops, &d, "a"), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX, 2, &fake_ops, &d, "a"), -EINVAL);
	assert_int_equal(bus_register(&bus, 1, UINT64_MAX, &fake_ops, &d, "a"), -EINVAL);
	assert_int_equal(bus_register(&bus, BASE_A, SIZE_A, NULL, &d, "a"), -EINVAL);
	assert_int_equal(bus_register(&bus, BASE_A, SIZE_A, &no_read_ops, &d, "a"), -EINVAL);
	assert_int_equal(bus_register(&bus, BASE_A, SIZE_A, &no_write_ops, &d, "a"), -EINVAL);
	assert_int_equal(bus.nr, 0);
}

static void test_register_overlap(void **state)
{
	(void)state;
	struct bus bus;
	struct fake_dev d = { 0 };
	bus_init(&bus);
	assert_int_equal(bus_register(&bus, BASE_A, SIZE_A, &fake_ops, &d, "a"), 0);
	assert_int_equal(bus_register(&bus, BASE_A, SIZE_A, &fake_ops, &d, "dup"), -EEXIST);
	assert_int_equal(bus_register(&bus, BASE_A + 0x10, 0x10, &fake_ops, &d, "in"), -EEXIST);
	assert_int_equal(bus_register(&bus, BASE_A - 0x10, 0x2000, &fake_ops, &d, "over"), -EEXIST);
	assert_int_equal(bus_register(&bus, BASE_A - 0x10, 0x11, &fake_ops, &d, "lo"), -EEXIST);
	assert_int_equal(bus_register(&bus, BASE_A + SIZE_A - 1, 0x10, &fake_ops, &d, "hi"),
			 -EEXIST);
	assert_int_equal(bus.nr, 1);
	/* adjacent on both sides */
	assert_int_equal(bus_register(&bus, BASE_A - 0x10, 0x10, &fake_ops, &d, "below"), 0);
	assert_int_equal(bus_register(&bus, BASE_A + SIZE_A, 0x10, &fake_ops, &d, "above"), 0);
	assert_int_equal(bus.nr, 3);
}

static void test_register_enospc(void **state)
{
	(void)state;
	struct bus bus;
	struct fake_dev d = { 0 };
	bus_init(&bus);
	for (unsigned int i = 0; i < BUS_MAX_DEVICES; i++)
		assert_int_equal(bus_register(&bus, 0x1000ULL * i, 0x1000, &fake_ops, &d, "x"), 0);
	assert_int_equal(bus_register(&bus, 0x1000000ULL, 0x1000, &fake_ops, &d, "full"), -ENOSPC);
	assert_int_equal(bus.nr, BUS_MAX_DEVICES);
	/* the last one registered still dispatches */
	uint8_t v;
	assert_int_equal(bus_read(&bus, 0x1000ULL * (BUS_MAX_DEVICES - 1) + 5, &v, 1), 0);
	assert_int_equal(d.last_off, 5);
}

static void test_find(void **state)
{
	(void)state;
	struct bus bus;
	struct fake_dev a = { 0 }, b = { 0 };
	bus_init(&bus);
	assert_int_equal(bus_register(&bus, BASE_A, SIZE_A, &fake_ops, &a, "uart"), 0);
	assert_int_equal(bus_register(&bus, BASE_B, SIZE_B, &fake_ops, &b, "timer"), 0);
	const struct bus_range *r = bus_find(&bus, BASE_A + 0x18, 4);
	assert_non_null(r);
	assert_string_equal(r->name, "uart");
	assert_ptr_equal(r->dev, &a);
	assert_int_equal(r->base, BASE_A);
	assert_int_equal(r->size, SIZE_A);
	r = bus_find(&bus, BASE_B + SIZE_B - 8, 8);
	assert_non_null(r);
	assert_string_equal(r->name, "timer");
	assert_null(bus_find(&bus, BASE_B + SIZE_B - 4, 8));
	assert_null(bus_find(&bus, BASE_B - 1, 2));
	assert_null(bus_find(&bus, BASE_B + SIZE_B, 1));
	assert_null(bus_find(&bus, 0, 4));
	assert_null(bus_find(&bus, UINT64_MAX - 1, 4));
}

static void test_dispatch_offsets(void **state)
{
	(void)state;
	struct bus bus;
	struct fake_dev a = { .tag = 0x10 }, b = { .tag = 0x80 };
	bus_init(&bus);
	assert_int_equal(bus_register(&bus, BASE_A, SIZE_A, &fake_ops, &a, "a"), 0);
	assert_int_equal(bus_register(&bus, BASE_B, SIZE_B, &fake_ops, &b, "b"), 0);

	static const unsigned int lens[] = { 1, 2, 4, 8 };
	for (unsigned int k = 0; k < 4; k++) {
		unsigned int len = lens[k];
		uint8_t data[8];
		memset(data, 0xee, sizeof(data));
		assert_int_equal(bus_read(&bus, BASE_A + 0x20, data, len), 0);
		assert_int_equal(a.last_off, 0x20);
		assert_int_equal(a.last_len, len);
		for (unsigned int i = 0; i < len; i++)
			assert_int_equal(data[i], (uint8_t)(0x10 + 0x20 + i));

		const uint8_t w[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
		assert_int_equal(bus_write(&bus, BASE_B + SIZE_B - len, w, len), 0);
		assert_int_equal(b.last_off, SIZE_B - len);
		assert_int_equal(b.last_len, len);
		assert_memory_equal(b.last_data, w, len);
	}
	assert_int_equal(a.reads, 4);
	assert_int_equal(a.writes, 0);
	assert_int_equal(b.reads, 0);
	assert_int_equal(b.writes, 4);
	/* offset 0 and the last byte */
	uint8_t v;
	assert_int_equal(bus_read(&bus, BASE_A, &v, 1), 0);
	assert_int_equal(a.last_off, 0);
	assert_int_equal(bus_read(&bus, BASE_A + SIZE_A - 1, &v, 1), 0);
	assert_int_equal(a.last_off, SIZE_A - 1);
}

static void test_unmapped(void **state)
{
	(void)state;
	struct bus bus;
	struct fake_dev a = { .tag = 1 };
	bus_init(&bus);
	assert_int_equal(bus_register(&bus, BASE_A, SIZE_A, &fake_ops, &a, "a"), 0);
	uint8_t data[8];
	memset(data, 0xaa, sizeof(data));
	assert_int_equal(bus_read(&bus, 0x1000, data, 8), -ENODEV);
	for (int i = 0; i < 8; i++)
		assert_int_equal(data[i], 0);
	memset(data, 0xaa, sizeof(data));
	assert_int_equal(bus_read(&bus, BASE_A + SIZE_A, data, 4), -ENODEV);
	for (int i = 0; i < 4; i++)
		assert_int_equal(data[i], 0);
	assert_int_equal(data[4], 0xaa); /* only len bytes are touched */
	assert_int_equal(bus_write(&bus, BASE_A - 4, data, 4), -ENODEV);
	assert_int_equal(a.reads + a.writes, 0);

	/* an empty bus */
	struct bus empty;
	bus_init(&empty);
	memset(data, 0xaa, sizeof(data));
	assert_int_equal(bus_read(&empty, 0, data, 2), -ENODEV);
	assert_int_equal(data[0], 0);
	assert_int_equal(data[1], 0);
	assert_int_equal(bus_write(&empty, 0, data, 2), -ENODEV);
}

static void test_bad_lengths(void **state)
{
	(void)state;
	struct bus bus;
	struct fake_dev a = { 0 };
	bus_init(&bus);
	assert_int_equal(bus_register(&bus, BASE_A, SIZE_A, &fake_ops, &a, "a"), 0);
	static const unsigned int bad[] = { 0, 3, 5, 6, 7, 9, 16, 4096, UINT32_MAX };
	uint8_t data[16] = { 0 };
	for (unsigned int k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		assert_int_equal(bus_read(&bus, BASE_A, data, bad[k]), -EINVAL);
		assert_int_equal(bus_write(&bus, BASE_A, data, bad[k]), -EINVAL);
		/* bad length wins over unmapped */
		assert_int_equal(bus_read(&bus, 0x10, data, bad[k]), -EINVAL);
	}
	assert_int_equal(a.reads + a.writes, 0);
}

static void test_straddle(void **state)
{
	(void)state;
	struct bus bus;
	struct fake_dev a = { 0 }, b = { 0 };
	bus_init(&bus);
	assert_int_equal(bus_register(&bus, BASE_A, SIZE_A, &fake_ops, &a, "a"), 0);
	/* b directly after a: an access across the boundary belongs to neither */
	assert_int_equal(bus_register(&bus, BASE_A + SIZE_A, SIZE_B, &fake_ops, &b, "b"), 0);
	uint8_t data[8];
	memset(data, 0xaa, sizeof(data));
	assert_int_equal(bus_read(&bus, BASE_A + SIZE_A - 4, data, 8), -ENODEV);
	for (int i = 0; i < 8; i++)
		assert_int_equal(data[i], 0);
	assert_int_equal(bus_write(&bus, BASE_A + SIZE_A - 1, data, 2), -ENODEV);
	/* straddling the start of a */
	assert_int_equal(bus_read(&bus, BASE_A - 2, data, 4), -ENODEV);
	/* straddling the end of b into nothing */
	assert_int_equal(bus_read(&bus, BASE_A + SIZE_A + SIZE_B - 1, data, 2), -ENODEV);
	assert_int_equal(a.reads + a.writes + b.reads + b.writes, 0);
	/* exactly at the ends: fine */
	assert_int_equal(bus_read(&bus, BASE_A + SIZE_A - 8, data, 8), 0);
	assert_int_equal(bus_read(&bus, BASE_A + SIZE_A, data, 8), 0);
	assert_int_equal(a.reads, 1);
	assert_int_equal(b.reads, 1);
	assert_int_equal(b.last_off, 0);
}

static void test_top_of_address_space(void **state)
{
	(void)state;
	struct bus bus;
	struct fake_dev a = { 0 };
	bus_init(&bus);
	/* [2^64 - 0x1001, 2^64 - 1): ends one byte below the top */
	uint64_t base = UINT64_MAX - 0x1000;
	assert_int_equal(bus_register(&bus, base, 0x1000, &fake_ops, &a, "top"), 0);
	uint8_t data[8];
	assert_int_equal(bus_read(&bus, base + 0xff8, data, 8), 0);
	assert_int_equal(a.last_off, 0xff8);
	assert_int_equal(bus_read(&bus, base + 0xffc, data, 8), -ENODEV);
	assert_int_equal(bus_read(&bus, UINT64_MAX, data, 1), -ENODEV);
	assert_int_equal(bus_read(&bus, UINT64_MAX - 3, data, 8), -ENODEV); /* wraps */
	assert_int_equal(bus_write(&bus, UINT64_MAX - 3, data, 8), -ENODEV);
	assert_int_equal(a.reads, 1);
	assert_int_equal(a.writes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_invalid),
		cmocka_unit_test(test_register_overlap),
		cmocka_unit_test(test_register_enospc),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_dispatch_offsets),
		cmocka_unit_test(test_unmapped),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_straddle),
		cmocka_unit_test(test_top_of_address_space),
	};
	return cmocka_run_group_tests_name("bus", tests, NULL, NULL);
}
