/* arm64 Image header parsing (Documentation/arch/arm64/booting.rst facts) and
 * placement of kernel, initrd and DTB in guest RAM. */
#include "arch/aarch64/image.h"
#include "arch/aarch64/layout.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SZ_4K 0x1000ULL
#define SZ_2M 0x200000ULL
#define SZ_1M 0x100000ULL
/* room the kernel needs beyond its image for early page tables and allocations */
#define KERNEL_HEADROOM (16 * SZ_1M)

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
						       ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/*
 * EFI-stub kernels carry a PE/COFF header ("MZ" at 0, PE offset at 0x3c). The
 * raw data of the last section must end inside the file, else it is truncated.
 * Returns 0 if consistent or not a PE image, -EINVAL if truncated/corrupt.
 */
static int check_pe_sections(const uint8_t *head, size_t head_len, uint64_t file_size,
			     char *err, size_t errlen)
{
	if (head_len < 0x40 || head[0] != 'M' || head[1] != 'Z')
		return 0;
	uint32_t pe = le32(head + 0x3c);
	if ((uint64_t)pe + 24 > head_len || memcmp(head + pe, "PE\0\0", 4) != 0)
		return 0; /* MZ without PE: not an EFI stub, nothing more to check */
	unsigned int nsec = le16(head + pe + 6);
	uint64_t sec = (uint64_t)pe + 24 + le16(head + pe + 20);
	if (nsec == 0 || nsec > 96 || sec + (uint64_t)nsec * 40 > head_len)
		return fail(err, errlen, "its PE/COFF section table is corrupt");
	uint64_t end = 0;
	for (unsigned int i = 0; i < nsec; i++) {
		const uint8_t *s = head + sec + (uint64_t)i * 40;
		uint64_t e = (uint64_t)le32(s + 20) + le32(s + 16);
		if (e > end)
			end = e;
	}
	if (end > file_size)
		return fail(err, errlen, "it is truncated (%llu of %llu bytes)",
			    (unsigned long long)file_size, (unsigned long long)end);
	return 0;
}

int a64_image_parse(const uint8_t *head, size_t head_len, uint64_t file_size,
		    struct a64_image_info *out, char *err, size_t errlen)
{
	if (file_size < A64_IMAGE_HDR_SIZE || head_len < A64_IMAGE_HDR_SIZE)
		return fail(err, errlen, "it is too short to be an arm64 Image (%llu bytes)",
			    (unsigned long long)file_size);
	if (le32(head + 56) != A64_IMAGE_MAGIC)
		return fail(err, errlen, "it is not an arm64 Image (no ARM\\x64 magic)");
	uint64_t text_offset = le64(head + 8);
	uint64_t image_size = le64(head + 16);
	uint64_t flags = le64(head + 24);
	if (flags & 1)
		return fail(err, errlen, "it is a big-endian kernel, which is not supported");
	if (image_size == 0) {
		/* pre-3.17 kernels: text_offset 0x80000 and no size information */
		text_offset = 0x80000;
		image_size = file_size;
	}
	if (text_offset % SZ_4K || text_offset >= SZ_2M)
		return fail(err, errlen, "its text_offset 0x%llx is invalid",
			    (unsigned long long)text_offset);
	if (image_size < file_size)
		return fail(err, errlen, "its image_size (%llu) is smaller than the file (%llu)",
			    (unsigned long long)image_size, (unsigned long long)file_size);
	if (image_size > (1ULL << 36))
		return fail(err, errlen, "its image_size (%llu) is implausibly large",
			    (unsigned long long)image_size);
	int r = check_pe_sections(head, head_len, file_size, err, errlen);
	if (r)
		return r;
	out->text_offset = text_offset;
	out->image_size = image_size;
	out->file_size = file_size;
	return 0;
}

static uint64_t align_down(uint64_t v, uint64_t a)
{
	return v & ~(a - 1);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

int a64_plan_boot(uint64_t ram_base, uint64_t ram_size, const struct a64_image_info *img,
		  uint64_t initrd_size, struct a64_boot_plan *plan, char *err, size_t errlen)
{
	if (ram_base % SZ_2M)
		return fail(err, errlen, "RAM base 0x%llx is not 2 MiB aligned",
			    (unsigned long long)ram_base);
	if (ram_base + ram_size < ram_base)
		return fail(err, errlen, "RAM 0x%llx+0x%llx wraps the address space",
			    (unsigned long long)ram_base, (unsigned long long)ram_size);
	/* each term is bounded by ram_size first, so the sum below cannot wrap */
	if (img->image_size > ram_size || initrd_size > ram_size || img->text_offset >= SZ_2M)
		return fail(err, errlen,
			    "guest memory (%llu MiB) is too small for the kernel%s: it needs at least %llu MiB",
			    (unsigned long long)(ram_size / SZ_1M), initrd_size ? " and initrd" : "",
			    (unsigned long long)((img->image_size > initrd_size ? img->image_size
									: initrd_size) /
						 SZ_1M) +
				    1);
	uint64_t need = img->text_offset + align_up(img->image_size, SZ_4K) + KERNEL_HEADROOM +
			align_up(initrd_size, SZ_4K) + A64_DTB_MAX_SIZE;
	if (need > ram_size)
		return fail(err, errlen,
			    "guest memory (%llu MiB) is too small for the kernel%s: it needs at least %llu MiB",
			    (unsigned long long)(ram_size / SZ_1M), initrd_size ? " and initrd" : "",
			    (unsigned long long)align_up(need, SZ_1M) / SZ_1M);
	uint64_t ram_end = ram_base + ram_size;
	memset(plan, 0, sizeof(*plan));
	plan->kernel_gpa = ram_base + img->text_offset;
	plan->kernel_end = plan->kernel_gpa + img->image_size;
	/* DTB in the top 2 MiB (must not cross a 2 MiB boundary... keep it aligned) */
	plan->dtb_gpa = align_down(ram_end - A64_DTB_MAX_SIZE, SZ_2M);
	if (initrd_size) {
		plan->initrd_size = initrd_size;
		plan->initrd_gpa = align_down(plan->dtb_gpa - initrd_size, SZ_4K);
	}
	return 0;
}
