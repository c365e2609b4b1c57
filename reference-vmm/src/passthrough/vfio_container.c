/* The per-VM VFIO container: /dev/vfio/vfio, the IOMMU groups attached to it
 * (type1v2 or no-IOMMU, never mixed), and the type1v2 DMA map of guest RAM. */
#include "passthrough/vfio_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vfio_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

size_t vfio_page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);
	return p > 0 ? (size_t)p : 4096;
}

static const char *mode_name(enum vfio_iommu_mode mode)
{
	return mode == VFIO_MODE_NOIOMMU ? "no-IOMMU" : "IOMMU (type1v2)";
}

struct vfio_container *vfio_container_new(const struct sys *sys, const struct log *log,
					  const char *sysfs_root)
{
	struct vfio_container *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->sys = *sys;
	c->log = log;
	c->fd = -1;
	c->sysfs_root = strdup(sysfs_root ? sysfs_root : VFIO_DEFAULT_SYSFS_ROOT);
	if (!c->sysfs_root) {
		free(c);
		return NULL;
	}
	return c;
}

enum vfio_iommu_mode vfio_container_mode(const struct vfio_container *c)
{
	return c->mode;
}

int vfio_container_fd(const struct vfio_container *c)
{
	return c->fd;
}

/* ---- DMA ---- */

static int dma_map_one(struct vfio_container *c, struct vfio_dma *d)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uint64_t)(uintptr_t)d->host,
		.iova = d->iova,
		.size = d->size,
	};
	int r = sys_ioctl_ptr(&c->sys, c->fd, VFIO_IOMMU_MAP_DMA, &m);
	if (r >= 0)
		d->mapped = true;
	return r < 0 ? r : 0;
}

static int dma_unmap_one(struct vfio_container *c, struct vfio_dma *d)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.iova = d->iova,
		.size = d->size,
	};
	if (!d->mapped)
		return 0;
	d->mapped = false;
	int r = sys_ioctl_ptr(&c->sys, c->fd, VFIO_IOMMU_UNMAP_DMA, &u);
	if (r < 0) {
		log_warn(c->log, "VFIO: cannot unmap DMA range 0x%llx+0x%llx: %s",
			 (unsigned long long)d->iova, (unsigned long long)d->size, strerror(-r));
		return r;
	}
	if (u.size != d->size) {
		log_warn(c->log, "VFIO: unmapping DMA range 0x%llx+0x%llx unmapped 0x%llx bytes",
			 (unsigned long long)d->iova, (unsigned long long)d->size,
			 (unsigned long long)u.size);
		return -EIO;
	}
	return 0;
}

/* After the first SET_IOMMU: map every range added before there was an IOMMU. On
 * failure the ranges mapped here are unmapped again. */
static int dma_replay(struct vfio_container *c, char *err, size_t errlen)
{
	if (c->mode != VFIO_MODE_TYPE1V2)
		return 0;
	for (unsigned int i = 0; i < c->nr_dma; i++) {
		struct vfio_dma *d = &c->dma[i];
		if (d->mapped)
			continue;
		int r = dma_map_one(c, d);
		if (r < 0) {
			for (unsigned int j = 0; j < i; j++)
				dma_unmap_one(c, &c->dma[j]);
			return vfio_fail(err, errlen, r,
					 "cannot map guest memory 0x%llx+0x%llx for DMA: %s",
					 (unsigned long long)d->iova, (unsigned long long)d->size,
					 strerror(-r));
		}
	}
	return 0;
}

int vfio_container_map_dma(struct vfio_container *c, uint64_t iova, void *host, uint64_t size,
			   char *err, size_t errlen)
{
	uint64_t mask = vfio_page_size() - 1;
	uint64_t h = (uint64_t)(uintptr_t)host;

	if (!size || ((iova | h | size) & mask) || iova + size < iova || h + size < h)
		return vfio_fail(err, errlen, -EINVAL,
				 "DMA range 0x%llx+0x%llx is empty, unaligned or wraps",
				 (unsigned long long)iova, (unsigned long long)size);
	for (unsigned int i = 0; i < c->nr_dma; i++) {
		struct vfio_dma *d = &c->dma[i];
		if (iova < d->iova + d->size && d->iova < iova + size)
			return vfio_fail(err, errlen, -EEXIST,
					 "DMA range 0x%llx+0x%llx overlaps 0x%llx+0x%llx",
					 (unsigned long long)iova, (unsigned long long)size,
					 (unsigned long long)d->iova, (unsigned long long)d->size);
	}
	if (c->nr_dma == c->cap_dma) {
		unsigned int n = c->cap_dma ? 2 * c->cap_dma : 4;
		struct vfio_dma *p = realloc(c->dma, n * sizeof(*p));
		if (!p)
			return vfio_fail(err, errlen, -ENOMEM, "out of memory for a DMA range");
		c->dma = p;
		c->cap_dma = n;
	}
	struct vfio_dma *d = &c->dma[c->nr_dma];
	*d = (struct vfio_dma){ .iova = iova, .size = size, .host = host };
	if (c->iommu_set && c->mode == VFIO_MODE_TYPE1V2) {
		int r = dma_map_one(c, d);
		if (r < 0)
			return vfio_fail(
				err, errlen, r, "cannot map guest memory 0x%llx+0x%llx for DMA: %s",
				(unsigned long long)iova, (unsigned long long)size, strerror(-r));
	}
	c->nr_dma++;
	return 0;
}

int vfio_container_map_guest_mem(struct vfio_container *c, const struct guest_mem *gm, char *err,
				 size_t errlen)
{
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		const struct guest_region *g = &gm->regions[i];
		int r = vfio_container_map_dma(c, g->gpa, g->host, g->size, err, errlen);
		if (r < 0) {
			while (i--)
				vfio_container_unmap_dma(c, gm->regions[i].gpa,
							 gm->regions[i].size);
			return r;
		}
	}
	return 0;
}

int vfio_container_unmap_dma(struct vfio_container *c, uint64_t iova, uint64_t size)
{
	for (unsigned int i = 0; i < c->nr_dma; i++) {
		struct vfio_dma *d = &c->dma[i];
		if (d->iova != iova || d->size != size)
			continue;
		int r = dma_unmap_one(c, d);
		memmove(d, d + 1, (c->nr_dma - i - 1) * sizeof(*d));
		c->nr_dma--;
		return r;
	}
	return -ENOENT;
}

int vfio_container_unmap_all(struct vfio_container *c)
{
	int first = 0;
	for (unsigned int i = 0; i < c->nr_dma; i++) {
		int r = dma_unmap_one(c, &c->dma[i]);
		if (r < 0 && !first)
			first = r;
	}
	c->nr_dma = 0;
	return first;
}

unsigned int vfio_container_nr_dma(const struct vfio_container *c)
{
	return c->nr_dma;
}

/* ---- groups ---- */

/* The last group left: the kernel drops the IOMMU and its mappings, so go back to the
 * initial state (and close the container fd, reopened by the next device). */
static void container_reset_if_empty(struct vfio_container *c)
{
	if (c->groups)
		return;
	for (unsigned int i = 0; i < c->nr_dma; i++)
		c->dma[i].mapped = false;
	c->iommu_set = false;
	c->mode = VFIO_MODE_NONE;
	if (c->fd >= 0)
		sys_close(&c->sys, c->fd);
	c->fd = -1;
}

static int container_open(struct vfio_container *c, char *err, size_t errlen)
{
	int fd = sys_open(&c->sys, VFIO_CONTAINER_PATH, O_RDWR);
	if (fd < 0)
		return vfio_fail(err, errlen, fd, "cannot open the VFIO container %s: %s",
				 VFIO_CONTAINER_PATH, strerror(-fd));
	int v = sys_ioctl(&c->sys, fd, VFIO_GET_API_VERSION, 0);
	if (v != VFIO_API_VERSION) {
		sys_close(&c->sys, fd);
		if (v < 0)
			return vfio_fail(err, errlen, v, "VFIO_GET_API_VERSION failed: %s",
					 strerror(-v));
		return vfio_fail(err, errlen, -ENOTSUP,
				 "host VFIO speaks API version %d, expected %d", v,
				 VFIO_API_VERSION);
	}
	c->fd = fd;
	return 0;
}

static int group_open(struct vfio_container *c, unsigned int id, bool *noiommu,
		      const char *dev_name, char *err, size_t errlen)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/vfio/%s%u", *noiommu ? "noiommu-" : "", id);
	int fd = sys_open(&c->sys, path, O_RDWR);
	if (fd == -ENOENT && !*noiommu) {
		char alt[64];
		snprintf(alt, sizeof(alt), "/dev/vfio/noiommu-%u", id);
		fd = sys_open(&c->sys, alt, O_RDWR);
		if (fd >= 0)
			*noiommu = true; /* a no-IOMMU group sysfs did not flag */
	}
	if (fd >= 0)
		return fd;
	if (fd == -EBUSY)
		return vfio_fail(err, errlen, fd,
				 "IOMMU group %u of %s is in use by another process (%s is busy)",
				 id, dev_name, path);
	if (fd == -ENOENT)
		return vfio_fail(
			err, errlen, fd,
			"%s (IOMMU group of %s) does not exist: is the vfio module loaded?", path,
			dev_name);
	return vfio_fail(err, errlen, fd, "cannot open %s (IOMMU group of %s): %s", path, dev_name,
			 strerror(-fd));
}

int vfio_group_get(struct vfio_container *c, unsigned int id, bool noiommu, const char *dev_name,
		   struct vfio_group **out, bool *created, char *err, size_t errlen)
{
	bool opened_container = false;
	int r;

	*created = false;
	for (struct vfio_group *g = c->groups; g; g = g->next) {
		if (g->id == id) {
			*out = g;
			return 0;
		}
	}

	int fd = group_open(c, id, &noiommu, dev_name, err, errlen);
	if (fd < 0)
		return fd;
	enum vfio_iommu_mode mode = noiommu ? VFIO_MODE_NOIOMMU : VFIO_MODE_TYPE1V2;
	if (c->mode != VFIO_MODE_NONE && c->mode != mode) {
		r = vfio_fail(
			err, errlen, -EINVAL,
			"%s is in a %s group but the VM's other passthrough devices use %s mode: "
			"they cannot share a VM",
			dev_name, mode_name(mode), mode_name(c->mode));
		goto close_group;
	}

	struct vfio_group_status st = { .argsz = sizeof(st) };
	r = sys_ioctl_ptr(&c->sys, fd, VFIO_GROUP_GET_STATUS, &st);
	if (r < 0) {
		r = vfio_fail(err, errlen, r, "VFIO_GROUP_GET_STATUS of group %u failed: %s", id,
			      strerror(-r));
		goto close_group;
	}
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		r = vfio_fail(err, errlen, -EINVAL,
			      "IOMMU group %u of %s is not viable: unbind the other devices in it "
			      "from their host drivers",
			      id, dev_name);
		goto close_group;
	}

	if (c->fd < 0) {
		r = container_open(c, err, errlen);
		if (r < 0)
			goto close_group;
		opened_container = true;
	}
	unsigned long type = noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU;
	if (!c->iommu_set) {
		r = sys_ioctl(&c->sys, c->fd, VFIO_CHECK_EXTENSION, type);
		if (r <= 0) {
			r = vfio_fail(
				err, errlen, r < 0 ? r : -ENOTSUP,
				noiommu ? "host VFIO does not offer no-IOMMU mode needed by %s "
					  "(load vfio with enable_unsafe_noiommu_mode=1)"
					: "host VFIO does not offer the type1v2 IOMMU needed by %s",
				dev_name);
			goto close_container;
		}
	}

	int32_t cfd = c->fd;
	r = sys_ioctl_ptr(&c->sys, fd, VFIO_GROUP_SET_CONTAINER, &cfd);
	if (r < 0) {
		r = vfio_fail(err, errlen, r,
			      "cannot attach IOMMU group %u of %s to the VFIO container: %s%s", id,
			      dev_name, strerror(-r),
			      r == -EPERM && noiommu ? " (no-IOMMU mode needs CAP_SYS_RAWIO)" : "");
		goto close_container;
	}

	struct vfio_group *g = calloc(1, sizeof(*g));
	if (!g) {
		r = vfio_fail(err, errlen, -ENOMEM, "out of memory");
		goto close_container;
	}
	g->c = c;
	g->id = id;
	g->noiommu = noiommu;
	g->fd = fd;
	g->next = c->groups;
	c->groups = g;

	if (!c->iommu_set) {
		r = sys_ioctl(&c->sys, c->fd, VFIO_SET_IOMMU, type);
		if (r < 0) {
			vfio_fail(err, errlen, r, "VFIO_SET_IOMMU (%s) for %s failed: %s",
				  mode_name(mode), dev_name, strerror(-r));
			vfio_group_release(g);
			return r;
		}
		c->iommu_set = true;
		c->mode = mode;
		if (mode == VFIO_MODE_NOIOMMU && !c->noiommu_warned) {
			c->noiommu_warned = true;
			log_warn(c->log,
				 "VFIO no-IOMMU mode for %s: passed-through devices are not "
				 "isolated "
				 "and get no DMA mapping; they must not do DMA",
				 dev_name);
		}
		r = dma_replay(c, err, errlen);
		if (r < 0) {
			vfio_group_release(g);
			return r;
		}
	}
	*out = g;
	*created = true;
	return 0;

close_container:
	if (opened_container) {
		sys_close(&c->sys, c->fd);
		c->fd = -1;
	}
close_group:
	sys_close(&c->sys, fd);
	return r;
}

void vfio_group_release(struct vfio_group *g)
{
	struct vfio_container *c = g->c;
	for (struct vfio_group **p = &c->groups; *p; p = &(*p)->next) {
		if (*p == g) {
			*p = g->next;
			break;
		}
	}
	if (!c->groups) /* unmap while the IOMMU still exists */
		for (unsigned int i = 0; i < c->nr_dma; i++)
			dma_unmap_one(c, &c->dma[i]);
	sys_close(&c->sys, g->fd); /* the kernel detaches the group from the container */
	free(g);
	container_reset_if_empty(c);
}

/* ---- devices of the container ---- */

int vfio_container_add_dev(struct vfio_container *c, struct vfio_dev *dev)
{
	if (c->nr_devs == c->cap_devs) {
		unsigned int n = c->cap_devs ? 2 * c->cap_devs : 4;
		struct vfio_dev **p = realloc(c->devs, n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->devs = p;
		c->cap_devs = n;
	}
	c->devs[c->nr_devs++] = dev;
	return 0;
}

void vfio_container_del_dev(struct vfio_container *c, struct vfio_dev *dev)
{
	for (unsigned int i = 0; i < c->nr_devs; i++) {
		if (c->devs[i] == dev) {
			memmove(&c->devs[i], &c->devs[i + 1], (c->nr_devs - i - 1) * sizeof(dev));
			c->nr_devs--;
			return;
		}
	}
}

struct vfio_dev *vfio_container_find_dev(struct vfio_container *c, const char *name)
{
	for (unsigned int i = 0; i < c->nr_devs; i++)
		if (strcmp(c->devs[i]->name, name) == 0)
			return c->devs[i];
	return NULL;
}

void vfio_container_free(struct vfio_container *c)
{
	if (!c)
		return;
	while (c->nr_devs) {
		log_warn(c->log, "VFIO: %s still open at container teardown", c->devs[0]->name);
		vfio_dev_close(c->devs[0]);
	}
	vfio_container_unmap_all(c);
	while (c->groups) {
		struct vfio_group *g = c->groups;
		c->groups = g->next;
		sys_close(&c->sys, g->fd);
		free(g);
	}
	if (c->fd >= 0)
		sys_close(&c->sys, c->fd);
	free(c->dma);
	free(c->devs);
	free(c->sysfs_root);
	free(c);
}
