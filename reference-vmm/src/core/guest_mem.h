/* Guest physical memory: a small set of RAM regions backed by host mappings, and
 * the only sanctioned way to turn a guest physical address into a host pointer. */
#ifndef VMM_GUEST_MEM_H
#define VMM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 8

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host; /* owned by whoever added the region */
};

struct guest_mem {
	struct guest_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned int nr_regions;
};

void guest_mem_init(struct guest_mem *gm);

/*
 * Add a region. Errors: -EINVAL (size 0, NULL host, gpa+size overflows),
 * -EEXIST (overlaps an existing region), -ENOSPC (table full).
 */
int guest_mem_add(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host);

/*
 * Host pointer for [gpa, gpa+len) if the whole range lies inside one region,
 * else NULL. len 0 is valid (returns the pointer if gpa is inside a region or at
 * its end). Never overflows: gpa+len wrap-around returns NULL.
 */
void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Bounds-checked copies; return 0 or -EFAULT. */
int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);
int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);

/* Total bytes of RAM across regions. */
uint64_t guest_mem_total(const struct guest_mem *gm);

#endif
