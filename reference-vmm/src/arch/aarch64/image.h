/* The arm64 Linux `Image` format: header validation and the guest load plan
 * (where kernel, initrd and DTB go in RAM). Pure functions: no KVM, no I/O. */
#ifndef VMM_A64_IMAGE_H
#define VMM_A64_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define A64_IMAGE_HDR_SIZE 64
#define A64_IMAGE_MAGIC 0x644d5241U /* "ARM\x64" at offset 56 */
#define A64_IMAGE_PROBE_SIZE 4096   /* bytes of the file the parser wants to see */

struct a64_image_info {
	uint64_t text_offset; /* load offset from a 2 MiB aligned base */
	uint64_t image_size;  /* bytes of memory the kernel needs, BSS included */
	uint64_t file_size;
};

/*
 * Validate an Image. `head` holds the first min(file_size, A64_IMAGE_PROBE_SIZE)
 * bytes. Rejects: too short, bad magic, big-endian, text_offset not 4 KiB
 * aligned or ≥ 2 MiB, image_size smaller than the file, and (for images with
 * an EFI/PE header) a file shorter than its sections (truncated).
 * Returns 0 or -EINVAL with a reason (no file name) in err.
 */
int a64_image_parse(const uint8_t *head, size_t head_len, uint64_t file_size,
		    struct a64_image_info *out, char *err, size_t errlen);

struct a64_boot_plan {
	uint64_t kernel_gpa; /* load address = entry point */
	uint64_t kernel_end; /* kernel_gpa + image_size */
	uint64_t initrd_gpa; /* 0 if no initrd */
	uint64_t initrd_size;
	uint64_t dtb_gpa;
};

/*
 * Place kernel, initrd and DTB in [ram_base, ram_base+ram_size). ram_base must
 * be 2 MiB aligned. Returns -EINVAL with "needs at least N MiB" in err when the
 * RAM is too small.
 */
int a64_plan_boot(uint64_t ram_base, uint64_t ram_size, const struct a64_image_info *img,
		  uint64_t initrd_size, struct a64_boot_plan *plan, char *err, size_t errlen);

#endif
