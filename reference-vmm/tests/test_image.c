/* Unit tests for arch/aarch64/image.c: arm64 Image header validation with
 * synthetic headers (incl. PE/COFF truncation checks) and a64_plan_boot placement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/aarch64/image.h"
#include "arch/aarch64/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SZ_4K 0x1000ULL
#define SZ_1M 0x100000ULL
#define SZ_2M 0x200000ULL
#define HEADROOM (16 * SZ_1M) /* documented in image.c: room beyond the image */

static uint8_t head[A64_IMAGE_PROBE_SIZE];
static char err[256];

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* An arm64 Image header (Documentation/arch/arm64/booting.rst) in `head`. */
static void mk_image(uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
	memset(head, 0, sizeof(head));
	put32(head, 0x14000010); /* code0: b +0x40 */
	put64(head + 8, text_offset);
	put64(head + 16, image_size);
	put64(head + 24, flags);
	memcpy(head + 56, "ARM\x64", 4);
	memset(err, 0, sizeof(err));
}

struct sec {
	uint32_t ptr, size; /* PointerToRawData, SizeOfRawData */
};

/* Turn `head` into an EFI-stub Image: MZ, PE header at pe_off, a section table. */
static void mk_pe(uint32_t pe_off, uint16_t nsec, uint16_t opt_size, const struct sec *secs,
		  unsigned int nsecs_given)
{
	head[0] = 'M';
	head[1] = 'Z';
	put32(head + 0x3c, pe_off);
	if ((uint64_t)pe_off + 24 > sizeof(head))
		return;
	memcpy(head + pe_off, "PE\0\0", 4);
	put16(head + pe_off + 4, 0xaa64); /* Machine: arm64 */
	put16(head + pe_off + 6, nsec);
	put16(head + pe_off + 20, opt_size);
	uint64_t tbl = (uint64_t)pe_off + 24 + opt_size;
	for (unsigned int i = 0; i < nsecs_given; i++) {
		uint8_t *s = head + tbl + 40ULL * i;
		if (tbl + 40ULL * (i + 1) > sizeof(head))
			break;
		snprintf((char *)s, 8, ".s%u", i);
		put32(s + 16, secs[i].size);
		put32(s + 20, secs[i].ptr);
	}
}

static int parse(uint64_t file_size, struct a64_image_info *out)
{
	size_t hl = file_size < sizeof(head) ? (size_t)file_size : sizeof(head);
	return a64_image_parse(head, hl, file_size, out, err, sizeof(err));
}

static void assert_err_has(const char *needle)
{
	if (!strstr(err, needle))
		fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
}

static const struct a64_image_info sentinel = { 0xdead, 0xbeef, 0xcafe };

static void assert_untouched(const struct a64_image_info *out)
{
	assert_int_equal(out->text_offset, sentinel.text_offset);
	assert_int_equal(out->image_size, sentinel.image_size);
	assert_int_equal(out->file_size, sentinel.file_size);
}

/* ---- a64_image_parse -------------------------------------------------------------------- */

static void test_parse_valid(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	mk_image(0, 40 * SZ_1M, 0x2 /* 4K pages, LE */);
	assert_int_equal(parse(33 * SZ_1M, &out), 0);
	assert_int_equal(out.text_offset, 0);
	assert_int_equal(out.image_size, 40 * SZ_1M);
	assert_int_equal(out.file_size, 33 * SZ_1M);

	mk_image(0x80000, 0x1000000, 0xe /* page size bits + placement bit */);
	assert_int_equal(parse(0x1000000, &out), 0); /* image_size == file size */
	assert_int_equal(out.text_offset, 0x80000);
	assert_int_equal(out.image_size, 0x1000000);

	mk_image(0x1ff000, 1ULL << 36, 0); /* the largest accepted values */
	assert_int_equal(parse(SZ_1M, &out), 0);
	assert_int_equal(out.text_offset, 0x1ff000);

	/* exactly a header */
	mk_image(0, 4096, 0);
	assert_int_equal(parse(A64_IMAGE_HDR_SIZE, &out), 0);
	assert_int_equal(out.file_size, A64_IMAGE_HDR_SIZE);
	/* err may be NULL */
	assert_int_equal(a64_image_parse(head, 64, 64, &out, NULL, 0), 0);
}

static void test_parse_short(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	mk_image(0, SZ_1M, 0);
	assert_int_equal(parse(63, &out), -EINVAL);
	assert_err_has("too short");
	assert_err_has("63 bytes");
	assert_int_equal(parse(0, &out), -EINVAL);
	assert_err_has("too short");
	/* the caller handed fewer header bytes than the file has */
	memset(err, 0, sizeof(err));
	assert_int_equal(a64_image_parse(head, 32, SZ_1M, &out, err, sizeof(err)), -EINVAL);
	assert_err_has("too short");
	assert_untouched(&out);
	assert_int_equal(a64_image_parse(head, 0, 0, &out, NULL, 0), -EINVAL);
}

static void test_parse_bad_magic(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	mk_image(0, SZ_1M, 0);
	head[59] = 0x65;
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("magic");
	/* an x86 bzImage-like or random file */
	memset(head, 0xff, sizeof(head));
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("not an arm64 Image");
	memset(head, 0, sizeof(head));
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_untouched(&out);
}

static void test_parse_big_endian(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	mk_image(0, SZ_1M, 1);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("big-endian");
	mk_image(0, SZ_1M, 0xf);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("big-endian");
	assert_untouched(&out);
}

static void test_parse_text_offset(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	mk_image(0x80001, 8 * SZ_1M, 0);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("text_offset");
	assert_err_has("0x80001");
	mk_image(0x800, 8 * SZ_1M, 0);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("0x800");
	mk_image(SZ_2M, 8 * SZ_1M, 0);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("0x200000");
	mk_image(1ULL << 63, 8 * SZ_1M, 0);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("0x8000000000000000");
	assert_untouched(&out);
}

static void test_parse_image_size(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	mk_image(0, SZ_1M - 1, 0);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("image_size");
	assert_err_has("1048575");
	assert_err_has("1048576");
	mk_image(0, (1ULL << 36) + 1, 0);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("image_size");
	mk_image(0, UINT64_MAX, 0);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_untouched(&out);
}

static void test_parse_legacy_image_size_zero(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	/* pre-3.17: image_size 0 → text_offset 0x80000, size = file size */
	mk_image(0, 0, 0);
	assert_int_equal(parse(5 * SZ_1M + 123, &out), 0);
	assert_int_equal(out.text_offset, 0x80000);
	assert_int_equal(out.image_size, 5 * SZ_1M + 123);
	assert_int_equal(out.file_size, 5 * SZ_1M + 123);
	/* whatever the (then meaningless) text_offset field says */
	mk_image(0x123, 0, 0);
	assert_int_equal(parse(SZ_1M, &out), 0);
	assert_int_equal(out.text_offset, 0x80000);
	assert_int_equal(out.image_size, SZ_1M);
	/* still rejected when big-endian */
	mk_image(0, 0, 1);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("big-endian");
}

/* A typical EFI-stub layout: PE header at 0x40, 0xa0 bytes of optional header. */
#define PE_OFF 0x40
#define OPT_SIZE 0xa0

static void test_parse_pe_consistent(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	const struct sec secs[] = { { 0x10000, 0x200000 }, { 0x210000, 0x10000 } };
	uint64_t end = 0x220000;
	mk_image(0, 0x400000, 0);
	mk_pe(PE_OFF, 2, OPT_SIZE, secs, 2);
	assert_int_equal(parse(end, &out), 0);
	assert_int_equal(out.file_size, end);
	/* extra bytes after the last section are fine (signatures, padding) */
	assert_int_equal(parse(end + 0x1000, &out), 0);
	/* the full 4 KiB probe with a larger file */
	assert_int_equal(a64_image_parse(head, sizeof(head), end, &out, err, sizeof(err)), 0);
}

static void test_parse_pe_truncated(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	const struct sec secs[] = { { 0x10000, 0x200000 }, { 0x210000, 0x10000 } };
	mk_image(0, 0x400000, 0);
	mk_pe(PE_OFF, 2, OPT_SIZE, secs, 2);
	assert_int_equal(parse(0x21ffff, &out), -EINVAL);
	assert_err_has("truncated");
	assert_err_has("2228223 of 2228224");
	assert_int_equal(parse(0x100000, &out), -EINVAL);
	assert_err_has("truncated");
	assert_untouched(&out);

	/* the section that ends last need not be the last in the table */
	const struct sec unordered[] = { { 0x300000, 0x80000 }, { 0x1000, 0x1000 },
					 { 0x2000, 0x100 } };
	mk_image(0, 0x800000, 0);
	mk_pe(PE_OFF, 3, OPT_SIZE, unordered, 3);
	assert_int_equal(parse(0x37ffff, &out), -EINVAL);
	assert_err_has("truncated");
	assert_int_equal(parse(0x380000, &out), 0);

	/* 32-bit fields whose sum exceeds 32 bits */
	const struct sec huge[] = { { 0xffffffff, 0xffffffff } };
	mk_image(0, 1ULL << 36, 0);
	mk_pe(PE_OFF, 1, OPT_SIZE, huge, 1);
	assert_int_equal(parse(0xffffffffULL, &out), -EINVAL);
	assert_err_has("truncated");
}

static void test_parse_pe_corrupt_section_table(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	const struct sec secs[] = { { 0x1000, 0x1000 } };
	/* no sections */
	mk_image(0, 0x400000, 0);
	mk_pe(PE_OFF, 0, OPT_SIZE, secs, 0);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("section table is corrupt");
	/* absurd section count */
	mk_image(0, 0x400000, 0);
	mk_pe(PE_OFF, 97, OPT_SIZE, secs, 1);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("corrupt");
	mk_image(0, 0x400000, 0);
	mk_pe(PE_OFF, 0xffff, OPT_SIZE, secs, 1);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("corrupt");
	/* table beyond the probed bytes (optional header size garbage) */
	mk_image(0, 0x400000, 0);
	mk_pe(PE_OFF, 1, 0xffff, secs, 0);
	assert_int_equal(parse(SZ_1M, &out), -EINVAL);
	assert_err_has("corrupt");
	/* table that fits the file but not the bytes the caller provided */
	mk_image(0, 0x400000, 0);
	mk_pe(PE_OFF, 2, OPT_SIZE, secs, 1);
	memset(err, 0, sizeof(err));
	assert_int_equal(a64_image_parse(head, PE_OFF + 24 + OPT_SIZE + 40, SZ_1M, &out, err,
					 sizeof(err)),
			 -EINVAL);
	assert_err_has("corrupt");
	assert_untouched(&out);
}

static void test_parse_mz_without_pe(void **state)
{
	(void)state;
	struct a64_image_info out = sentinel;
	const struct sec secs[] = { { 0x100000, 0x100000 } };
	/* MZ but no "PE\0\0" at the pointer: not an EFI stub, no section check */
	mk_image(0, 0x400000, 0);
	mk_pe(PE_OFF, 1, OPT_SIZE, secs, 1);
	head[PE_OFF + 1] = 'X';
	assert_int_equal(parse(0x1000, &out), 0);
	/* PE pointer outside the probed bytes, or absurd: ignored, never read */
	mk_image(0, 0x400000, 0);
	mk_pe(0xfffffff0, 1, OPT_SIZE, secs, 1);
	assert_int_equal(parse(0x1000, &out), 0);
	mk_image(0, 0x400000, 0);
	mk_pe(sizeof(head) - 8, 1, OPT_SIZE, secs, 0);
	assert_int_equal(parse(0x1000, &out), 0);
	/* PE header in the probe but the caller gave only the 64-byte header */
	mk_image(0, 0x400000, 0);
	mk_pe(PE_OFF, 1, OPT_SIZE, secs, 1);
	assert_int_equal(a64_image_parse(head, 64, 0x1000, &out, err, sizeof(err)), 0);
}

/* ---- a64_plan_boot ------------------------------------------------------------------------ */

static void check_plan(uint64_t base, uint64_t size, const struct a64_image_info *img,
		       uint64_t initrd, const struct a64_boot_plan *p)
{
	uint64_t end = base + size;
	assert_int_equal(p->kernel_gpa, base + img->text_offset);
	assert_int_equal(p->kernel_end, p->kernel_gpa + img->image_size);
	/* DTB: 2 MiB aligned, all 2 MiB of it inside RAM, in the top 2 MiB (or the
	 * aligned slot just below when RAM does not end on 2 MiB), above the kernel */
	assert_int_equal(p->dtb_gpa % SZ_2M, 0);
	assert_true(p->dtb_gpa + A64_DTB_MAX_SIZE <= end);
	assert_true(p->dtb_gpa + 2 * SZ_2M > end);
	if (size % SZ_2M == 0)
		assert_int_equal(p->dtb_gpa, end - SZ_2M);
	assert_true(p->dtb_gpa >= p->kernel_end);
	if (initrd) {
		assert_int_equal(p->initrd_size, initrd);
		assert_int_equal(p->initrd_gpa % SZ_4K, 0);
		assert_true(p->initrd_gpa + initrd <= p->dtb_gpa);
		assert_true(p->initrd_gpa >= p->kernel_end);
		/* placed right below the DTB, not anywhere */
		assert_true(p->dtb_gpa - (p->initrd_gpa + initrd) < SZ_4K);
	} else {
		assert_int_equal(p->initrd_gpa, 0);
		assert_int_equal(p->initrd_size, 0);
	}
}

static void test_plan_basic(void **state)
{
	(void)state;
	const struct a64_image_info img = { .text_offset = 0, .image_size = 30 * SZ_1M + 5,
					    .file_size = 20 * SZ_1M };
	struct a64_boot_plan p;
	uint64_t initrd = 10 * SZ_1M + 123;
	assert_int_equal(a64_plan_boot(A64_RAM_BASE, 256 * SZ_1M, &img, initrd, &p, err,
				       sizeof(err)),
			 0);
	check_plan(A64_RAM_BASE, 256 * SZ_1M, &img, initrd, &p);
	assert_int_equal(p.kernel_gpa, A64_RAM_BASE);
	assert_int_equal(p.dtb_gpa, A64_RAM_BASE + 254 * SZ_1M);
	assert_int_equal(p.initrd_gpa, (A64_RAM_BASE + 254 * SZ_1M - initrd) & ~(SZ_4K - 1));
}

static void test_plan_text_offset(void **state)
{
	(void)state;
	const struct a64_image_info img = { .text_offset = 0x80000, .image_size = 8 * SZ_1M,
					    .file_size = 8 * SZ_1M };
	struct a64_boot_plan p;
	assert_int_equal(a64_plan_boot(A64_RAM_BASE, 64 * SZ_1M, &img, 4096, &p, err,
				       sizeof(err)),
			 0);
	assert_int_equal(p.kernel_gpa, A64_RAM_BASE + 0x80000);
	assert_int_equal(p.kernel_end, A64_RAM_BASE + 0x80000 + 8 * SZ_1M);
	check_plan(A64_RAM_BASE, 64 * SZ_1M, &img, 4096, &p);
	/* RAM at 0 and at a high base */
	assert_int_equal(a64_plan_boot(0, 64 * SZ_1M, &img, 0, &p, err, sizeof(err)), 0);
	check_plan(0, 64 * SZ_1M, &img, 0, &p);
	assert_int_equal(a64_plan_boot(1ULL << 40, 64 * SZ_1M, &img, 1, &p, err, sizeof(err)), 0);
	check_plan(1ULL << 40, 64 * SZ_1M, &img, 1, &p);
}

static void test_plan_no_initrd(void **state)
{
	(void)state;
	const struct a64_image_info img = { 0, 30 * SZ_1M, 30 * SZ_1M };
	struct a64_boot_plan p;
	memset(&p, 0xff, sizeof(p));
	assert_int_equal(a64_plan_boot(A64_RAM_BASE, 2048 * SZ_1M, &img, 0, &p, err, sizeof(err)),
			 0);
	check_plan(A64_RAM_BASE, 2048 * SZ_1M, &img, 0, &p);
	assert_int_equal(p.dtb_gpa, A64_RAM_BASE + 2046 * SZ_1M);
}

static void test_plan_sweep_sizes(void **state)
{
	(void)state;
	/* every RAM size from the minimum up, 4 KiB steps, odd initrd sizes */
	const struct a64_image_info img = { 0x80000, 12 * SZ_1M + 4097, 12 * SZ_1M };
	static const uint64_t initrds[] = { 0, 1, 4095, 4096, 3 * SZ_1M + 17 };
	for (size_t k = 0; k < sizeof(initrds) / sizeof(initrds[0]); k++) {
		uint64_t initrd = initrds[k];
		unsigned int ok = 0;
		for (uint64_t size = 16 * SZ_1M; size <= 48 * SZ_1M; size += SZ_4K) {
			struct a64_boot_plan p;
			if (a64_plan_boot(A64_RAM_BASE, size, &img, initrd, &p, err, sizeof(err)))
				continue;
			ok++;
			check_plan(A64_RAM_BASE, size, &img, initrd, &p);
			/* the kernel keeps its headroom */
			uint64_t next = initrd ? p.initrd_gpa : p.dtb_gpa;
			assert_true(next - p.kernel_end >= 12 * SZ_1M);
		}
		assert_true(ok > 0);
	}
}

static void test_plan_ram_wraps(void **state)
{
	(void)state;
	const struct a64_image_info img = { 0x80000, SZ_1M, SZ_1M };
	struct a64_boot_plan p;
	memset(err, 0, sizeof(err));
	uint64_t base = 0xffffffffffe00000ULL; /* 2 MiB aligned, 2 MiB below the top */
	assert_int_equal(a64_plan_boot(base, 64 * SZ_1M, &img, 0, &p, err, sizeof(err)), -EINVAL);
	assert_err_has("wraps");
}

static void test_plan_too_small(void **state)
{
	(void)state;
	/* text 0.5 MiB + image 30 MiB + 4 KiB (rounded) + 16 MiB headroom + DTB 2 MiB:
	 * 48.5 MiB + 4 KiB → at least 49 MiB */
	const struct a64_image_info img = { 0x80000, 30 * SZ_1M + 1, 30 * SZ_1M };
	struct a64_boot_plan p;
	memset(err, 0, sizeof(err));
	assert_int_equal(a64_plan_boot(A64_RAM_BASE, 32 * SZ_1M, &img, 0, &p, err, sizeof(err)),
			 -EINVAL);
	assert_err_has("needs at least 49 MiB");
	assert_err_has("32 MiB");
	assert_null(strstr(err, "initrd"));
	/* with an initrd of 10 MiB + 1: 58.5 MiB + 8 KiB → 59 */
	memset(err, 0, sizeof(err));
	assert_int_equal(a64_plan_boot(A64_RAM_BASE, 48 * SZ_1M, &img, 10 * SZ_1M + 1, &p, err,
				       sizeof(err)),
			 -EINVAL);
	assert_err_has("needs at least 59 MiB");
	assert_err_has("initrd");
	/* the boundary: exactly enough works, one page less does not */
	uint64_t need = 0x80000 + 30 * SZ_1M + SZ_4K + HEADROOM + A64_DTB_MAX_SIZE;
	assert_int_equal(a64_plan_boot(A64_RAM_BASE, need, &img, 0, &p, err, sizeof(err)), 0);
	check_plan(A64_RAM_BASE, need, &img, 0, &p);
	assert_int_equal(a64_plan_boot(A64_RAM_BASE, need - SZ_4K, &img, 0, &p, err, sizeof(err)),
			 -EINVAL);
	assert_err_has("needs at least 49 MiB");
	/* no RAM at all */
	assert_int_equal(a64_plan_boot(A64_RAM_BASE, 0, &img, 0, &p, err, sizeof(err)), -EINVAL);
	assert_err_has("needs at least");
	/* NULL err is fine */
	assert_int_equal(a64_plan_boot(A64_RAM_BASE, 0, &img, 0, &p, NULL, 0), -EINVAL);
}

static void test_plan_base_misaligned(void **state)
{
	(void)state;
	const struct a64_image_info img = { 0, SZ_1M, SZ_1M };
	struct a64_boot_plan p;
	memset(err, 0, sizeof(err));
	assert_int_equal(a64_plan_boot(A64_RAM_BASE + 0x1000, 256 * SZ_1M, &img, 0, &p, err,
				       sizeof(err)),
			 -EINVAL);
	assert_err_has("0x40001000");
	assert_err_has("2 MiB");
	assert_int_equal(a64_plan_boot(A64_RAM_BASE + SZ_1M, 256 * SZ_1M, &img, 0, &p, err,
				       sizeof(err)),
			 -EINVAL);
	assert_err_has("0x40100000");
}

static void test_plan_huge_initrd(void **state)
{
	(void)state;
	/* sizes near 2^64 must not wrap the size arithmetic into "fits" */
	const struct a64_image_info img = { 0, 30 * SZ_1M, 30 * SZ_1M };
	static const uint64_t huge[] = { UINT64_MAX, UINT64_MAX - 0x100,
					 UINT64_MAX - 16 * SZ_1M + 1, 1ULL << 63 };
	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		struct a64_boot_plan p;
		memset(&p, 0, sizeof(p));
		memset(err, 0, sizeof(err));
		int r = a64_plan_boot(A64_RAM_BASE, 256 * SZ_1M, &img, huge[i], &p, err,
				      sizeof(err));
		if (r != -EINVAL)
			fail_msg("initrd_size 0x%llx accepted (r=%d): initrd at 0x%llx, dtb at 0x%llx",
				 (unsigned long long)huge[i], r, (unsigned long long)p.initrd_gpa,
				 (unsigned long long)p.dtb_gpa);
		assert_err_has("needs at least");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_short),
		cmocka_unit_test(test_parse_bad_magic),
		cmocka_unit_test(test_parse_big_endian),
		cmocka_unit_test(test_parse_text_offset),
		cmocka_unit_test(test_parse_image_size),
		cmocka_unit_test(test_parse_legacy_image_size_zero),
		cmocka_unit_test(test_parse_pe_consistent),
		cmocka_unit_test(test_parse_pe_truncated),
		cmocka_unit_test(test_parse_pe_corrupt_section_table),
		cmocka_unit_test(test_parse_mz_without_pe),
		cmocka_unit_test(test_plan_basic),
		cmocka_unit_test(test_plan_text_offset),
		cmocka_unit_test(test_plan_no_initrd),
		cmocka_unit_test(test_plan_sweep_sizes),
		cmocka_unit_test(test_plan_too_small),
		cmocka_unit_test(test_plan_ram_wraps),
		cmocka_unit_test(test_plan_base_misaligned),
		cmocka_unit_test(test_plan_huge_initrd),
	};
	return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
