/* Guest physical memory regions and bounds-checked GPA→host translation. */
#include "core/guest_mem.h"

#include <errno.h>
#include <string.h>

void guest_mem_init(struct guest_mem *gm)
{
	memset(gm, 0, sizeof(*gm));
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	/* both ranges are known not to wrap */
	return a < b + blen && b < a + alen;
}

int guest_mem_add(struct guest_mem *gm, uint64_t gpa, uint64_t size, void *host)
{
	if (size == 0 || host == NULL || gpa + size < gpa)
		return -EINVAL;
	if (gm->nr_regions >= GUEST_MEM_MAX_REGIONS)
		return -ENOSPC;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		const struct guest_region *r = &gm->regions[i];
		if (ranges_overlap(gpa, size, r->gpa, r->size))
			return -EEXIST;
	}
	gm->regions[gm->nr_regions++] = (struct guest_region){ gpa, size, host };
	return 0;
}

void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (gpa + len < gpa)
		return NULL;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		const struct guest_region *r = &gm->regions[i];
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		if (off > r->size || len > r->size - off)
			continue;
		return r->host + off;
	}
	return NULL;
}

int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = guest_mem_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = guest_mem_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

uint64_t guest_mem_total(const struct guest_mem *gm)
{
	uint64_t t = 0;
	for (unsigned int i = 0; i < gm->nr_regions; i++)
		t += gm->regions[i].size;
	return t;
}
