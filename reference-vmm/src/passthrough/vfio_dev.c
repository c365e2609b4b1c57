/* VFIO platform/AMBA devices: sysfs checks, opening through the container's group,
 * region and IRQ discovery, direct (mmapped) or trapped regions, reset, close. */
#include "passthrough/vfio_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* ---- trapped regions ---- */

static void region_warn(struct vfio_region *r, const char *what, uint64_t off, unsigned int len,
			int e)
{
	if (atomic_exchange(&r->warned, true))
		return;
	log_warn(r->dev->c->log,
		 "%s region %u: guest %s of %u bytes at 0x%llx failed (%s); reads return all-ones, "
		 "writes are dropped (logged once)",
		 r->dev->name, r->index, what, len, (unsigned long long)off, strerror(-e));
}

static int region_check(const struct vfio_region *r, uint64_t off, unsigned int len, uint32_t need)
{
	if (len != 1 && len != 2 && len != 4 && len != 8)
		return -EINVAL;
	if (off >= r->size || len > r->size - off)
		return -ERANGE;
	if (!(r->flags & need))
		return -EACCES;
	return 0;
}

static void region_read(void *p, uint64_t off, uint8_t *data, unsigned int len)
{
	struct vfio_region *r = p;
	uint8_t buf[8];
	int e = region_check(r, off, len, VFIO_REGION_INFO_FLAG_READ);

	memset(data, 0xff, len > 8 ? 8 : len);
	if (!e) {
		ssize_t n =
			sys_pread(&r->dev->c->sys, r->dev->fd, buf, len, (off_t)(r->offset + off));
		if (n == (ssize_t)len) {
			memcpy(data, buf, len);
			return;
		}
		e = n < 0 ? (int)n : -EIO;
	}
	region_warn(r, "read", off, len, e);
}

static void region_write(void *p, uint64_t off, const uint8_t *data, unsigned int len)
{
	struct vfio_region *r = p;
	int e = region_check(r, off, len, VFIO_REGION_INFO_FLAG_WRITE);

	if (!e) {
		ssize_t n = sys_pwrite(&r->dev->c->sys, r->dev->fd, data, len,
				       (off_t)(r->offset + off));
		if (n == (ssize_t)len)
			return;
		e = n < 0 ? (int)n : -EIO;
	}
	region_warn(r, "write", off, len, e);
}

const struct bus_device_ops vfio_region_bus_ops = {
	.read = region_read,
	.write = region_write,
};

struct vfio_region *vfio_dev_region(struct vfio_dev *dev, unsigned int index)
{
	return index < dev->nr_regions ? &dev->regions[index] : NULL;
}

struct vfio_irq *vfio_dev_irq(struct vfio_dev *dev, unsigned int index)
{
	return index < dev->nr_irqs ? &dev->irqs[index] : NULL;
}

/* ---- discovery ---- */

/* mmap a region the kernel says is mappable; any obstacle leaves it trapped. */
static void region_map(struct vfio_dev *dev, struct vfio_region *r)
{
	uint64_t mask = vfio_page_size() - 1;
	int prot = ((r->flags & VFIO_REGION_INFO_FLAG_READ) ? PROT_READ : 0) |
		   ((r->flags & VFIO_REGION_INFO_FLAG_WRITE) ? PROT_WRITE : 0);

	if (!(r->flags & VFIO_REGION_INFO_FLAG_MMAP) || !r->size || !prot)
		return;
	if ((r->size & mask) || (r->offset & mask) || r->size > SIZE_MAX ||
	    r->offset > (uint64_t)INT64_MAX) {
		log_dbg(dev->c->log, "%s region %u (0x%llx bytes) is not page-aligned: trapped",
			dev->name, r->index, (unsigned long long)r->size);
		return;
	}
	int e = 0;
	void *p = sys_mmap(&dev->c->sys, (size_t)r->size, prot, MAP_SHARED, dev->fd,
			   (off_t)r->offset, &e);
	if (!p) {
		log_warn(dev->c->log, "cannot mmap %s region %u: %s; its accesses are trapped",
			 dev->name, r->index, strerror(e ? -e : ENOMEM));
		return;
	}
	r->map = p;
}

static int get_regions(struct vfio_dev *dev, char *err, size_t errlen)
{
	if (!dev->nr_regions)
		return 0;
	dev->regions = calloc(dev->nr_regions, sizeof(*dev->regions));
	if (!dev->regions)
		return vfio_fail(err, errlen, -ENOMEM, "out of memory");
	for (unsigned int i = 0; i < dev->nr_regions; i++) {
		struct vfio_region *r = &dev->regions[i];
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = i };
		int e = sys_ioctl_ptr(&dev->c->sys, dev->fd, VFIO_DEVICE_GET_REGION_INFO, &ri);
		if (e < 0)
			return vfio_fail(err, errlen, e, "cannot get region %u of %s: %s", i,
					 dev->name, strerror(-e));
		r->dev = dev;
		r->index = i;
		r->size = ri.size;
		r->offset = ri.offset;
		r->flags = ri.flags;
		r->host_phys = VFIO_ADDR_UNKNOWN;
		atomic_init(&r->warned, false);
		region_map(dev, r);
	}
	return 0;
}

static int get_irqs(struct vfio_dev *dev, char *err, size_t errlen)
{
	if (!dev->nr_irqs)
		return 0;
	dev->irqs = calloc(dev->nr_irqs, sizeof(*dev->irqs));
	if (!dev->irqs)
		return vfio_fail(err, errlen, -ENOMEM, "out of memory");
	for (unsigned int i = 0; i < dev->nr_irqs; i++) {
		struct vfio_irq *q = &dev->irqs[i];
		struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = i };
		int e = sys_ioctl_ptr(&dev->c->sys, dev->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii);
		if (e < 0)
			return vfio_fail(err, errlen, e, "cannot get IRQ %u of %s: %s", i,
					 dev->name, strerror(-e));
		q->index = i;
		q->count = ii.count;
		q->flags = ii.flags;
		q->trigger_fd = q->unmask_fd = -1;
	}
	return 0;
}

static int get_info(struct vfio_dev *dev, char *err, size_t errlen)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int e = sys_ioctl_ptr(&dev->c->sys, dev->fd, VFIO_DEVICE_GET_INFO, &info);
	if (e < 0)
		return vfio_fail(err, errlen, e, "VFIO_DEVICE_GET_INFO of %s failed: %s", dev->name,
				 strerror(-e));
	if (!(info.flags & (VFIO_DEVICE_FLAGS_PLATFORM | VFIO_DEVICE_FLAGS_AMBA)))
		return vfio_fail(err, errlen, -EINVAL,
				 "%s is not a VFIO platform or AMBA device (device flags 0x%x)",
				 dev->name, info.flags);
	if (info.num_regions > VFIO_MAX_REGIONS || info.num_irqs > VFIO_MAX_IRQS)
		return vfio_fail(err, errlen, -E2BIG, "%s has too many regions (%u) or IRQs (%u)",
				 dev->name, info.num_regions, info.num_irqs);
	dev->flags = info.flags;
	dev->nr_regions = info.num_regions;
	dev->nr_irqs = info.num_irqs;
	return 0;
}

/* sysfs: existence, driver binding, IOMMU group, of_node. */
static int check_sysfs(struct vfio_dev *dev, const char *user_path, unsigned int *group,
		       bool *noiommu, char *err, size_t errlen)
{
	char drv[256];
	struct stat st;

	if (stat(dev->sysfs_path, &st) < 0 || !S_ISDIR(st.st_mode))
		return vfio_fail(err, errlen, -EINVAL, "passthrough device %s does not exist",
				 user_path);
	int r = vfio_sysfs_link_name(dev->sysfs_path, "driver", drv, sizeof(drv));
	if (r == -ENOENT)
		return vfio_fail(
			err, errlen, -EINVAL,
			"%s is not bound to any driver: bind it to vfio-platform or vfio-amba",
			dev->name);
	if (r < 0)
		return vfio_fail(err, errlen, -EINVAL, "cannot read the driver of %s: %s",
				 dev->name, strerror(-r));
	if (strcmp(drv, "vfio-platform") != 0 && strcmp(drv, "vfio-amba") != 0)
		return vfio_fail(
			err, errlen, -EINVAL,
			"%s is bound to driver %s: unbind it and bind it to vfio-platform or "
			"vfio-amba",
			dev->name, drv);
	dev->driver = strdup(drv);
	if (!dev->driver)
		return vfio_fail(err, errlen, -ENOMEM, "out of memory");
	r = vfio_sysfs_iommu_group(dev->sysfs_path, group, noiommu);
	if (r == -ENOENT)
		return vfio_fail(err, errlen, -EINVAL,
				 "%s has no IOMMU group (without an IOMMU, load vfio with "
				 "enable_unsafe_noiommu_mode=1 and rebind it)",
				 dev->name);
	if (r < 0)
		return vfio_fail(err, errlen, -EINVAL, "%s has an unrecognised iommu_group link",
				 dev->name);
	dev->of_node = vfio_sysfs_realpath(dev->sysfs_path, "of_node"); /* optional */
	return 0;
}

/* Everything but the group: mappings, device fd, memory. */
static void dev_free(struct vfio_dev *dev)
{
	for (unsigned int i = 0; dev->regions && i < dev->nr_regions; i++) {
		struct vfio_region *r = &dev->regions[i];
		if (r->map)
			sys_munmap(&dev->c->sys, r->map, (size_t)r->size);
		r->map = NULL;
	}
	if (dev->fd >= 0)
		sys_close(&dev->c->sys, dev->fd);
	free(dev->regions);
	free(dev->irqs);
	free(dev->name);
	free(dev->sysfs_path);
	free(dev->of_node);
	free(dev->driver);
	free(dev);
}

int vfio_dev_open(struct vfio_container *c, const char *sysfs_path, struct vfio_dev **out,
		  char *err, size_t errlen)
{
	bool created = false, noiommu = false;
	unsigned int gid = 0;
	int r;

	*out = NULL;
	if (!sysfs_path || !*sysfs_path)
		return vfio_fail(err, errlen, -EINVAL, "empty passthrough device path");
	struct vfio_dev *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return vfio_fail(err, errlen, -ENOMEM, "out of memory");
	dev->c = c;
	dev->fd = -1;
	dev->sysfs_path = vfio_sysfs_resolve(c->sysfs_root, sysfs_path);
	if (!dev->sysfs_path) {
		free(dev);
		return vfio_fail(err, errlen, -ENOMEM, "out of memory");
	}
	size_t n = strlen(dev->sysfs_path);
	while (n > 1 && dev->sysfs_path[n - 1] == '/')
		dev->sysfs_path[--n] = '\0';
	const char *base = strrchr(dev->sysfs_path, '/');
	dev->name = strdup(base ? base + 1 : dev->sysfs_path);
	if (!dev->name) {
		r = vfio_fail(err, errlen, -ENOMEM, "out of memory");
		goto fail;
	}

	r = check_sysfs(dev, sysfs_path, &gid, &noiommu, err, errlen);
	if (r < 0)
		goto fail;
	if (vfio_container_find_dev(c, dev->name)) {
		r = vfio_fail(err, errlen, -EINVAL, "%s is passed through more than once",
			      dev->name);
		goto fail;
	}
	r = vfio_group_get(c, gid, noiommu, dev->name, &dev->group, &created, err, errlen);
	if (r < 0)
		goto fail;

	r = sys_ioctl_ptr(&c->sys, dev->group->fd, VFIO_GROUP_GET_DEVICE_FD, dev->name);
	if (r < 0) {
		r = vfio_fail(err, errlen, r,
			      "cannot get the VFIO device %s from IOMMU group %u: %s", dev->name,
			      gid, strerror(-r));
		goto fail;
	}
	dev->fd = r;
	r = get_info(dev, err, errlen);
	if (!r)
		r = get_regions(dev, err, errlen);
	if (!r)
		r = get_irqs(dev, err, errlen);
	if (!r && vfio_container_add_dev(c, dev) < 0)
		r = vfio_fail(err, errlen, -ENOMEM, "out of memory");
	if (r < 0)
		goto fail;
	dev->group->nr_devs++;
	*out = dev;
	return 0;

fail:
	if (created && dev->group->nr_devs == 0) {
		struct vfio_group *g = dev->group;
		dev->group = NULL;
		/* the device fd goes first: the kernel keeps the group attached while it is open */
		if (dev->fd >= 0)
			sys_close(&c->sys, dev->fd);
		dev->fd = -1;
		for (unsigned int i = 0; dev->regions && i < dev->nr_regions; i++) {
			if (dev->regions[i].map)
				sys_munmap(&c->sys, dev->regions[i].map,
					   (size_t)dev->regions[i].size);
			dev->regions[i].map = NULL;
		}
		vfio_group_release(g);
	}
	dev_free(dev);
	return r;
}

void vfio_dev_close(struct vfio_dev *dev)
{
	if (!dev)
		return;
	vfio_irqs_disable_all(dev);
	if (dev->group)
		dev->group->nr_devs--;
	vfio_container_del_dev(dev->c, dev);
	dev_free(dev);
}

int vfio_dev_reset(struct vfio_dev *dev)
{
	int r = 0;

	if (dev->flags & VFIO_DEVICE_FLAGS_RESET) {
		r = sys_ioctl(&dev->c->sys, dev->fd, VFIO_DEVICE_RESET, 0);
		if (r < 0)
			log_warn(dev->c->log, "VFIO_DEVICE_RESET of %s failed: %s", dev->name,
				 strerror(-r));
	} else if (!dev->reset_warned) {
		dev->reset_warned = true;
		log_info(dev->c->log,
			 "%s does not support reset: the guest finds it as the last user left it",
			 dev->name);
	}
	int u = vfio_irqs_rearm(dev);
	return r < 0 ? r : u;
}
