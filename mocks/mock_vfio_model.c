/* Mock VFIO model: containers (type1v2/noiommu, DMA map), groups (attach rules,
 * device fds), vfio-platform devices (info, regions, SET_IRQS, reset, mmap, pread/
 * pwrite) and the IRQ state machine (trigger, automask, unmask eventfds). */
#include "mock_vfio_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MINSZ(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
#define PAGE_MASK_LOW (MOCK_VFIO_PAGE_SIZE - 1)

/* ---- lifetimes ---- */

int mv_open_container(struct mock_vfio *m)
{
	if (MV_GROW(m->containers, m->cap_containers, m->nr_containers + 1))
		return -ENOMEM;
	struct mv_container *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int fd = mv_fd_alloc(m, MOCK_VFIO_FD_CONTAINER, c, NULL, NULL);
	if (fd < 0) {
		free(c);
		return fd;
	}
	c->fd_open = true;
	m->containers[m->nr_containers++] = c;
	return fd;
}

int mv_open_group(struct mock_vfio *m, struct mv_group *g)
{
	if (g->fd_open)
		return -EBUSY;
	int fd = mv_fd_alloc(m, MOCK_VFIO_FD_GROUP, NULL, g, NULL);
	if (fd >= 0)
		g->fd_open = true;
	return fd;
}

static void container_maybe_release(struct mv_container *c)
{
	if (!c->fd_open && !c->nr_groups) {
		c->dead = true;
		c->nr_dma = 0;
	}
}

static void group_detach(struct mv_group *g)
{
	struct mv_container *c = g->c;
	g->c = NULL;
	if (--c->nr_groups == 0) {
		/* the last group leaves: IOMMU unset, all of its state lost */
		c->iommu = 0;
		c->noiommu = false;
		c->nr_dma = 0;
	}
	container_maybe_release(c);
}

void mv_container_closed(struct mock_vfio *m, struct mv_container *c)
{
	(void)m;
	c->fd_open = false;
	container_maybe_release(c);
}

void mv_group_closed(struct mock_vfio *m, struct mv_group *g)
{
	(void)m;
	g->fd_open = false;
	if (g->c && !g->dev_files)
		group_detach(g);
}

void mv_irq_release(struct mv_irq *q)
{
	if (q->trigger >= 0)
		close(q->trigger);
	if (q->unmask >= 0)
		close(q->unmask);
	q->trigger = q->unmask = q->trigger_user = q->unmask_user = -1;
}

void mv_dfile_put(struct mock_vfio *m, struct mv_dfile *df)
{
	(void)m;
	if (--df->refs)
		return;
	struct mv_device *d = df->dev;
	struct mv_group *g = d->group;
	free(df);
	if (--d->open_files == 0) {
		/* vfio_platform_close_device: irqs torn down, regions unmapped */
		for (size_t i = 0; i < d->nr_irqs; i++)
			mv_irq_release(&d->irqs[i]);
		d->implicit_resets++;
	}
	g->dev_files--;
	if (!g->dev_files && !g->fd_open && g->c)
		group_detach(g);
}

/* ---- IRQs ---- */

/* The kernel's handler for the irq: level automasks, then signals the trigger. */
void mv_irq_fire(struct mock_vfio *m, struct mv_irq *q)
{
	(void)m;
	if (q->trigger < 0) {
		q->lost++;
		return;
	}
	if (q->flags & VFIO_IRQ_INFO_AUTOMASKED) {
		if (q->masked)
			return;
		q->masked = true;
		q->automasks++;
	}
	uint64_t one = 1;
	if (write(q->trigger, &one, sizeof(one)) == (ssize_t)sizeof(one))
		q->signals++;
}

/* A level line that is asserted, unmasked and routed fires. */
void mv_irq_eval(struct mock_vfio *m, struct mv_irq *q)
{
	if ((q->flags & VFIO_IRQ_INFO_AUTOMASKED) && q->line && q->trigger >= 0 && !q->masked)
		mv_irq_fire(m, q);
}

static void irq_unmask(struct mock_vfio *m, struct mv_irq *q)
{
	q->unmask_requests++;
	if (!q->masked)
		return;
	q->masked = false;
	q->unmasks++;
	mv_irq_eval(m, q);
}

static bool eventfd_consume(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLIN))
		return false;
	return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v);
}

static int irq_poll_one(struct mock_vfio *m, struct mv_irq *q)
{
	if (q->unmask < 0 || !eventfd_consume(q->unmask))
		return 0;
	irq_unmask(m, q);
	return 1;
}

int mv_poll(struct mock_vfio *m)
{
	int n = 0;
	for (size_t i = 0; i < m->nr_devs; i++)
		for (size_t j = 0; j < m->devs[i]->nr_irqs; j++)
			n += irq_poll_one(m, &m->devs[i]->irqs[j]);
	return n;
}

/* Replace the mock's reference to one of the irq's eventfds (fd < 0: drop it). */
static int irq_set_fd(struct mock_vfio *m, int *slot, int *user, int fd)
{
	int dup_fd = -1;
	if (fd >= 0) {
		int r = mv_eventfd_check(m, fd);
		if (r)
			return r;
		dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dup_fd < 0)
			return -errno;
	}
	if (*slot >= 0)
		close(*slot);
	*slot = dup_fd;
	*user = fd >= 0 ? fd : -1;
	return 0;
}

static int set_irqs(struct mock_vfio *m, struct mv_device *d, unsigned long arg,
		    struct mock_vfio_call *call)
{
	const size_t minsz = MINSZ(struct vfio_irq_set, count);
	struct vfio_irq_set hdr;
	const uint8_t *data;
	size_t size;

	if (!arg)
		return -EFAULT;
	memcpy(&hdr, (const void *)arg, minsz);
	data = (const uint8_t *)arg + minsz;
	call->index = hdr.index;
	call->flags = hdr.flags;
	call->start = hdr.start;
	call->count = hdr.count;
	if (hdr.argsz < minsz || hdr.index >= d->nr_irqs || hdr.count >= UINT32_MAX - hdr.start ||
	    (hdr.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)))
		return -EINVAL;
	struct mv_irq *q = &d->irqs[hdr.index];
	if (hdr.start >= q->count || hdr.start + hdr.count > q->count)
		return -EINVAL;
	switch (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
	case VFIO_IRQ_SET_DATA_NONE:
		size = 0;
		break;
	case VFIO_IRQ_SET_DATA_BOOL:
		size = 1;
		break;
	case VFIO_IRQ_SET_DATA_EVENTFD:
		size = sizeof(int32_t);
		break;
	default:
		return -EINVAL;
	}
	if (size && hdr.argsz - minsz < hdr.count * size)
		return -EINVAL;
	int32_t fd = -1;
	if (size == sizeof(int32_t) && hdr.count) {
		memcpy(&fd, data, sizeof(fd));
		call->data_fd = fd;
	}
	uint32_t data_type = hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
	bool yes = data_type == VFIO_IRQ_SET_DATA_NONE ||
		   (data_type == VFIO_IRQ_SET_DATA_BOOL && hdr.count && data[0]);

	switch (hdr.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) {
	case VFIO_IRQ_SET_ACTION_MASK:
		if (!(q->flags & VFIO_IRQ_INFO_MASKABLE))
			return -ENOTTY;
		if (hdr.start != 0 || hdr.count != 1 || data_type == VFIO_IRQ_SET_DATA_EVENTFD)
			return -EINVAL;
		if (yes) {
			q->masks++;
			q->masked = true;
		}
		return 0;
	case VFIO_IRQ_SET_ACTION_UNMASK:
		if (!(q->flags & VFIO_IRQ_INFO_MASKABLE))
			return -ENOTTY;
		if (hdr.start != 0 || hdr.count != 1)
			return -EINVAL;
		if (data_type == VFIO_IRQ_SET_DATA_EVENTFD) {
			int r = irq_set_fd(m, &q->unmask, &q->unmask_user, fd);
			if (!r)
				irq_poll_one(m, q); /* already signalled: unmask now */
			return r;
		}
		if (yes)
			irq_unmask(m, q);
		return 0;
	case VFIO_IRQ_SET_ACTION_TRIGGER:
		if (!(q->flags & VFIO_IRQ_INFO_EVENTFD))
			return -ENOTTY;
		if (!hdr.count && data_type == VFIO_IRQ_SET_DATA_NONE)
			return irq_set_fd(m, &q->trigger, &q->trigger_user, -1);
		if (hdr.start != 0 || hdr.count != 1)
			return -EINVAL;
		if (data_type == VFIO_IRQ_SET_DATA_EVENTFD) {
			int r = irq_set_fd(m, &q->trigger, &q->trigger_user, fd);
			if (!r)
				mv_irq_eval(m, q); /* enable_irq of an asserted level line */
			return r;
		}
		if (yes)
			mv_irq_fire(m, q); /* loopback: the handler runs as if the line fired */
		return 0;
	default:
		return -ENOTTY;
	}
}

/* ---- container ---- */

static bool is_type1(unsigned long t)
{
	return t == VFIO_TYPE1_IOMMU || t == VFIO_TYPE1v2_IOMMU;
}

static int check_extension(struct mock_vfio *m, struct mv_container *c, unsigned long ext)
{
	bool t1 = is_type1(ext) || ext == VFIO_UNMAP_ALL;
	bool ni = ext == VFIO_NOIOMMU_IOMMU;
	if (c->iommu)
		return c->iommu == VFIO_NOIOMMU_IOMMU ? ni : t1;
	bool allow_t1 = m->type1 && !(c->nr_groups && c->noiommu);
	bool allow_ni = m->noiommu && !(c->nr_groups && !c->noiommu);
	return (t1 && allow_t1) || (ni && allow_ni);
}

static int map_dma(struct mock_vfio *m, struct mv_container *c, unsigned long arg,
		   struct mock_vfio_call *call)
{
	const size_t minsz = MINSZ(struct vfio_iommu_type1_dma_map, size);
	struct vfio_iommu_type1_dma_map mp;

	(void)m;
	if (!arg)
		return -EFAULT;
	memcpy(&mp, (const void *)arg, minsz);
	call->flags = mp.flags;
	call->iova = mp.iova;
	call->size = mp.size;
	if (mp.argsz < minsz || (mp.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE |
					      VFIO_DMA_MAP_FLAG_VADDR)))
		return -EINVAL;
	if (mp.flags & VFIO_DMA_MAP_FLAG_VADDR)
		return -EINVAL; /* mock: vaddr updates are not modelled */
	if (!(mp.flags & (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)))
		return -EINVAL;
	if (!mp.size || ((mp.size | mp.iova | mp.vaddr) & PAGE_MASK_LOW) ||
	    mp.iova + mp.size - 1 < mp.iova || mp.vaddr + mp.size - 1 < mp.vaddr)
		return -EINVAL;
	for (size_t i = 0; i < c->nr_dma; i++) {
		struct mock_vfio_dma *d = &c->dma[i];
		if (mp.iova < d->iova + d->size && d->iova < mp.iova + mp.size)
			return -EEXIST;
	}
	/* pinning fails on addresses the process has not mapped */
	if (msync((void *)(uintptr_t)mp.vaddr, (size_t)mp.size, MS_ASYNC) < 0)
		return -EFAULT;
	if (MV_GROW(c->dma, c->cap_dma, c->nr_dma + 1))
		return -ENOMEM;
	c->dma[c->nr_dma++] = (struct mock_vfio_dma){
		.iova = mp.iova,
		.vaddr = mp.vaddr,
		.size = mp.size,
		.flags = mp.flags,
	};
	return 0;
}

static int unmap_dma(struct mock_vfio *m, struct mv_container *c, unsigned long arg,
		     struct mock_vfio_call *call)
{
	const size_t minsz = MINSZ(struct vfio_iommu_type1_dma_unmap, size);
	struct vfio_iommu_type1_dma_unmap u;

	if (!arg)
		return -EFAULT;
	memcpy(&u, (const void *)arg, minsz);
	call->flags = u.flags;
	call->iova = u.iova;
	call->size = u.size;
	if (u.argsz < minsz || (u.flags & ~(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP |
					    VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)))
		return -EINVAL;
	if (u.flags & (VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_VADDR))
		return -EINVAL; /* mock: dirty tracking and vaddr updates are not modelled */
	bool all = u.flags & VFIO_DMA_UNMAP_FLAG_ALL;
	uint64_t start = u.iova, end = u.iova + u.size; /* end exclusive */
	if (all) {
		if (u.iova || u.size)
			return -EINVAL;
		end = UINT64_MAX;
	} else {
		if (!u.size || ((u.size | u.iova) & PAGE_MASK_LOW) || u.iova + u.size - 1 < u.iova)
			return -EINVAL;
		for (size_t i = 0; i < c->nr_dma; i++) {
			struct mock_vfio_dma *d = &c->dma[i];
			uint64_t dend = d->iova + d->size;
			if ((d->iova < start && start < dend) || (d->iova < end && end < dend))
				return -EINVAL; /* v2: no splitting of a mapping */
		}
	}
	uint64_t unmapped = 0;
	for (size_t i = 0; i < c->nr_dma;) {
		struct mock_vfio_dma *d = &c->dma[i];
		if (d->iova >= start && d->iova + d->size - 1 <= end - 1) {
			unmapped += d->size;
			memmove(d, d + 1, (c->nr_dma - i - 1) * sizeof(*d));
			c->nr_dma--;
		} else {
			i++;
		}
	}
	((struct vfio_iommu_type1_dma_unmap *)arg)->size = unmapped;
	if (!unmapped && !all)
		mv_violation(m, "VFIO_IOMMU_UNMAP_DMA of 0x%llx+0x%llx: no mapping there",
			     (unsigned long long)u.iova, (unsigned long long)u.size);
	return 0;
}

int mv_container_ioctl(struct mock_vfio *m, struct mv_container *c, unsigned long req,
		       unsigned long arg, struct mock_vfio_call *call)
{
	switch (req) {
	case VFIO_GET_API_VERSION:
		return m->api_version;
	case VFIO_CHECK_EXTENSION:
		return check_extension(m, c, arg);
	case VFIO_SET_IOMMU:
		if (!c->nr_groups || c->iommu)
			return -EINVAL;
		if (is_type1(arg) && m->type1 && !c->noiommu)
			c->iommu = arg;
		else if (arg == VFIO_NOIOMMU_IOMMU && m->noiommu && c->noiommu)
			c->iommu = arg;
		else
			return -ENODEV;
		return 0;
	default:
		break;
	}
	if (!c->iommu)
		return -EINVAL;
	if (c->iommu == VFIO_NOIOMMU_IOMMU)
		return -ENOTTY;
	if (req == VFIO_IOMMU_MAP_DMA)
		return map_dma(m, c, arg, call);
	if (req == VFIO_IOMMU_UNMAP_DMA)
		return unmap_dma(m, c, arg, call);
	return -ENOTTY;
}

/* ---- group ---- */

static int set_container(struct mock_vfio *m, struct mv_group *g, unsigned long arg)
{
	int32_t cfd;

	if (!arg)
		return -EFAULT;
	memcpy(&cfd, (const void *)arg, sizeof(cfd));
	if (g->c)
		return -EINVAL;
	if (g->noiommu && !m->rawio)
		return -EPERM;
	struct mv_fd *f = mv_fd_find(m, cfd);
	if (!f)
		return cfd >= 0 && fcntl(cfd, F_GETFD) >= 0 ? -EINVAL : -EBADF;
	if (f->kind != MOCK_VFIO_FD_CONTAINER)
		return -EINVAL;
	struct mv_container *c = f->c;
	if (c->nr_groups && c->noiommu != g->noiommu)
		return -EPERM; /* real and fake groups cannot mix */
	if (!g->noiommu && !g->viable)
		return -EBUSY; /* iommu_group_claim_dma_owner() */
	g->c = c;
	c->nr_groups++;
	c->noiommu = g->noiommu;
	return 0;
}

static int get_device_fd(struct mock_vfio *m, struct mv_group *g, unsigned long arg)
{
	if (!arg)
		return -EFAULT;
	if (!g->c || !g->c->iommu)
		return -EINVAL;
	struct mv_device *d = mv_dev_find(m, (const char *)arg);
	if (!d || d->group != g)
		return -ENODEV;
	struct mv_dfile *df = calloc(1, sizeof(*df));
	if (!df)
		return -ENOMEM;
	df->dev = d;
	df->refs = 1;
	int fd = mv_fd_alloc(m, MOCK_VFIO_FD_DEVICE, NULL, NULL, df);
	if (fd < 0) {
		free(df);
		return fd;
	}
	if (d->open_files++ == 0) {
		/* vfio_platform_open_device -> irq init: every line starts unmasked */
		for (size_t i = 0; i < d->nr_irqs; i++)
			d->irqs[i].masked = false;
	}
	d->opens++;
	g->dev_files++;
	return fd;
}

int mv_group_ioctl(struct mock_vfio *m, struct mv_group *g, unsigned long req, unsigned long arg,
		   struct mock_vfio_call *call)
{
	(void)call;
	switch (req) {
	case VFIO_GROUP_GET_STATUS: {
		struct vfio_group_status *st = (struct vfio_group_status *)arg;
		if (!st)
			return -EFAULT;
		if (st->argsz < MINSZ(struct vfio_group_status, flags))
			return -EINVAL;
		st->flags = 0;
		if (g->c)
			st->flags = VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE;
		else if (g->viable)
			st->flags = VFIO_GROUP_FLAGS_VIABLE;
		return 0;
	}
	case VFIO_GROUP_SET_CONTAINER:
		return set_container(m, g, arg);
	case VFIO_GROUP_UNSET_CONTAINER:
		if (!g->c)
			return -EINVAL;
		if (g->dev_files)
			return -EBUSY;
		group_detach(g);
		return 0;
	case VFIO_GROUP_GET_DEVICE_FD:
		return get_device_fd(m, g, arg);
	default:
		return -ENOTTY;
	}
}

/* ---- device ---- */

int mv_device_ioctl(struct mock_vfio *m, struct mv_device *d, unsigned long req, unsigned long arg,
		    struct mock_vfio_call *call)
{
	switch (req) {
	case VFIO_DEVICE_GET_INFO: {
		struct vfio_device_info *info = (struct vfio_device_info *)arg;
		if (!info)
			return -EFAULT;
		if (info->argsz < MINSZ(struct vfio_device_info, num_irqs))
			return -EINVAL;
		info->flags = d->flags;
		info->num_regions = (uint32_t)d->nr_regions;
		info->num_irqs = (uint32_t)d->nr_irqs;
		return 0;
	}
	case VFIO_DEVICE_GET_REGION_INFO: {
		struct vfio_region_info *ri = (struct vfio_region_info *)arg;
		if (!ri)
			return -EFAULT;
		call->index = ri->index;
		if (ri->argsz < MINSZ(struct vfio_region_info, offset) ||
		    ri->index >= d->nr_regions)
			return -EINVAL;
		ri->flags = d->regions[ri->index].flags;
		ri->cap_offset = 0;
		ri->size = d->regions[ri->index].size;
		ri->offset = MOCK_VFIO_REGION_OFFSET(ri->index);
		return 0;
	}
	case VFIO_DEVICE_GET_IRQ_INFO: {
		struct vfio_irq_info *ii = (struct vfio_irq_info *)arg;
		if (!ii)
			return -EFAULT;
		call->index = ii->index;
		if (ii->argsz < MINSZ(struct vfio_irq_info, count) || ii->index >= d->nr_irqs)
			return -EINVAL;
		ii->flags = d->irqs[ii->index].flags;
		ii->count = d->irqs[ii->index].count;
		return 0;
	}
	case VFIO_DEVICE_SET_IRQS:
		return set_irqs(m, d, arg, call);
	case VFIO_DEVICE_RESET:
		if (!(d->flags & VFIO_DEVICE_FLAGS_RESET))
			return -EINVAL;
		d->resets++;
		for (size_t i = 0; i < d->nr_irqs; i++)
			if (d->irqs[i].flags & VFIO_IRQ_INFO_AUTOMASKED)
				d->irqs[i].line = false;
		return 0;
	default:
		return -ENOTTY;
	}
}

ssize_t mv_device_rw(struct mock_vfio *m, struct mv_device *d, bool write, void *buf, size_t len,
		     off_t off)
{
	(void)m;
	if (off < 0)
		return -EINVAL;
	uint64_t index = (uint64_t)off >> MOCK_VFIO_OFFSET_SHIFT;
	uint64_t o = (uint64_t)off & ((1ULL << MOCK_VFIO_OFFSET_SHIFT) - 1);
	if (index >= d->nr_regions)
		return -EINVAL;
	struct mv_region *r = &d->regions[index];
	if (!(r->flags & (write ? VFIO_REGION_INFO_FLAG_WRITE : VFIO_REGION_INFO_FLAG_READ)))
		return -EINVAL;
	if (o >= r->size || len > r->size - o)
		return -EINVAL;
	if (write) {
		memcpy(r->mem + o, buf, len);
		d->writes++;
	} else {
		memcpy(buf, r->mem + o, len);
		d->reads++;
	}
	return (ssize_t)len;
}

void *mv_device_mmap(struct mock_vfio *m, struct mv_device *d, size_t len, int prot, int flags,
		     off_t off, int *err)
{
	(void)m;
	*err = -EINVAL;
	if (off < 0 || ((uint64_t)off & PAGE_MASK_LOW))
		return NULL;
	uint64_t index = (uint64_t)off >> MOCK_VFIO_OFFSET_SHIFT;
	uint64_t start = (uint64_t)off & ((1ULL << MOCK_VFIO_OFFSET_SHIFT) - 1);
	if (index >= d->nr_regions)
		return NULL;
	struct mv_region *r = &d->regions[index];
	if (!(r->flags & VFIO_REGION_INFO_FLAG_MMAP))
		return NULL;
	if (!(r->flags & VFIO_REGION_INFO_FLAG_READ) && (prot & PROT_READ))
		return NULL;
	if (!(r->flags & VFIO_REGION_INFO_FLAG_WRITE) && (prot & PROT_WRITE))
		return NULL;
	uint64_t req_len = (len + PAGE_MASK_LOW) & ~PAGE_MASK_LOW;
	if (r->size < MOCK_VFIO_PAGE_SIZE || start + req_len > r->size)
		return NULL;
	if ((flags & MAP_TYPE) != MAP_SHARED || (flags & MAP_FIXED))
		return NULL; /* mock: private or fixed device mappings are not modelled */
	void *p = mmap(NULL, len, prot, MAP_SHARED, r->memfd, (off_t)start);
	if (p == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	*err = 0;
	return p;
}
